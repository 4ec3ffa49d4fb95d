import type { AppConfig } from '../config/app-config';
import type { Tick } from '../shared/wire';
import type { PriceStreamService } from '../stream/price-stream.service';
import { buildCandles, CandlesService } from './candles.service';

const MIN = 60_000;
const T0 = Date.parse('2026-11-21T21:00:00.000Z');
const tick = (offsetMs: number, price: number, n = 0): Tick => ({ id: `${T0 + offsetMs}-${n}`, pair: 'BTC-USD', price, timestamp: new Date(T0 + offsetMs).toISOString(), source: 'simulated' });

describe(buildCandles.name, () => {
  it('makes one candle per interval with open, high, low, close and the tick count', () => {
    const candles = buildCandles([tick(0, 100), tick(10_000, 105), tick(20_000, 98), tick(59_999, 99), tick(MIN, 101)], MIN);
    expect(candles).toEqual([
      { time: '2026-11-21T21:00:00.000Z', open: 100, high: 105, low: 98, close: 99, ticks: 4 },
      { time: '2026-11-21T21:01:00.000Z', open: 101, high: 101, low: 101, close: 101, ticks: 1 },
    ]);
  });

  it('leaves out an interval without a tick instead of inventing a flat candle', () => {
    const candles = buildCandles([tick(0, 100), tick(3 * MIN + 1, 90)], MIN);
    expect(candles.map((c) => c.time)).toEqual(['2026-11-21T21:00:00.000Z', '2026-11-21T21:03:00.000Z']);
  });

  it('aligns candles to the interval since the epoch, whatever the first tick', () => {
    const candles = buildCandles([tick(7 * MIN + 30_000, 100), tick(9 * MIN, 101), tick(10 * MIN, 102)], 5 * MIN);
    expect(candles).toEqual([
      { time: '2026-11-21T21:05:00.000Z', open: 100, high: 101, low: 100, close: 101, ticks: 2 },
      { time: '2026-11-21T21:10:00.000Z', open: 102, high: 102, low: 102, close: 102, ticks: 1 },
    ]);
  });

  it('skips a tick whose timestamp does not parse', () => {
    expect(buildCandles([{ ...tick(0, 100), timestamp: 'nope' }, tick(1000, 101)], MIN)).toEqual([
      { time: '2026-11-21T21:00:00.000Z', open: 101, high: 101, low: 101, close: 101, ticks: 1 },
    ]);
  });
});

describe(CandlesService.name, () => {
  const make = (ticks: Tick[], complete = true) => {
    const history = jest.fn((_pair: string, _sinceMs: number | undefined, _limit: number) => Promise.resolve({ complete, ticks }));
    const service = new CandlesService({ history } as unknown as PriceStreamService, { historySize: 5000 } as AppConfig);
    return { service, history };
  };

  it('reads the window from the start of the oldest interval asked for, all of it, and returns at most limit candles', async () => {
    const { service, history } = make([tick(0, 1), tick(MIN, 2), tick(2 * MIN, 3), tick(3 * MIN + 5, 4)]);
    const now = T0 + 3 * MIN + 30_000;
    const res = await service.candles('BTC-USD', '1m', 3, now);
    expect(history).toHaveBeenCalledWith('BTC-USD', T0 + MIN, 5000);
    expect(res).toMatchObject({ pair: 'BTC-USD', interval: '1m', complete: true });
    expect(res.candles.map((c) => c.close)).toEqual([2, 3, 4]);
  });

  it('passes on that the window does not reach back far enough', async () => {
    const { service } = make([tick(0, 1)], false);
    expect((await service.candles('BTC-USD', '1h', 100, T0)).complete).toBe(false);
  });
});
