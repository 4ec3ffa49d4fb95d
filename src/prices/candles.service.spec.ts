import type { CandleStore } from '../candles/candle-store';
import { MinuteBook } from '../candles/minute-book';
import { CandlesService } from './candles.service';

const MIN = 60_000;
const T0 = Date.parse('2026-11-21T21:00:00.000Z');

function make() {
  const book = new MinuteBook(7 * 86_400_000);
  const service = new CandlesService({ book } as unknown as CandleStore);
  const tick = (ms: number, price: number) => book.addTick('BTC-USD', price, T0 + ms, T0 + ms);
  return { book, service, tick };
}

describe(CandlesService.name, () => {
  it('answers the last limit buckets up to now, oldest first, the open one closed:false', () => {
    const { service, tick } = make();
    tick(0, 1);
    tick(MIN, 2);
    tick(2 * MIN, 3);
    tick(3 * MIN + 5, 4);
    const res = service.candles('BTC-USD', '1m', { limit: 3 }, T0 + 3 * MIN + 30_000);
    expect(res).toMatchObject({ pair: 'BTC-USD', interval: '1m', from: '2026-11-21T21:01:00.000Z', to: '2026-11-21T21:03:00.000Z', gaps: [] });
    expect(res.candles.map((c) => [c.close, c.closed])).toEqual([
      [2, true],
      [3, true],
      [4, false],
    ]);
  });

  it('runs forward from `from`, stops at `to`, and lists empty buckets as gaps', () => {
    const { service, tick } = make();
    tick(0, 1);
    tick(10 * MIN, 2);
    const res = service.candles('BTC-USD', '5m', { fromMs: T0 - 5 * MIN, toMs: T0 + 10 * MIN, limit: 100 }, T0 + 20 * MIN);
    expect(res.candles.map((c) => c.time)).toEqual(['2026-11-21T21:00:00.000Z', '2026-11-21T21:10:00.000Z']);
    expect(res.gaps).toEqual([
      { from: '2026-11-21T20:55:00.000Z', to: '2026-11-21T21:00:00.000Z' },
      { from: '2026-11-21T21:05:00.000Z', to: '2026-11-21T21:10:00.000Z' },
    ]);
    expect(service.candles('BTC-USD', '5m', { fromMs: T0, limit: 2 }, T0 + 20 * MIN).to).toBe('2026-11-21T21:05:00.000Z');
  });

  it('serves the closed candles from its cache, and reads again once a backfill changed them', () => {
    const { book, service, tick } = make();
    tick(0, 1);
    tick(2 * MIN, 3);
    const now = T0 + 2 * MIN + 1;
    const range = jest.spyOn(book, 'range');
    const first = service.body('BTC-USD', '1m', { limit: 10 }, now);
    const closedReads = () => range.mock.calls.filter(([, from]) => from < T0 + 2 * MIN).length;
    expect(closedReads()).toBe(1);
    tick(2 * MIN + 500, 4);
    const second = service.body('BTC-USD', '1m', { limit: 10 }, now + 1000);
    expect(closedReads()).toBe(1);
    expect(second.etag).not.toBe(first.etag);
    expect(service.body('BTC-USD', '1m', { limit: 10 }, now + 1000).etag).toBe(second.etag);

    book.fill('BTC-USD', [{ start: T0 + MIN, open: 2, high: 2, low: 2, close: 2, ticks: 0, firstMs: null, lastMs: null, source: 'kraken' }], now);
    const third = service.body('BTC-USD', '1m', { limit: 10 }, now + 1000);
    expect(closedReads()).toBe(2);
    expect(third.etag).not.toBe(second.etag);
    expect((JSON.parse(third.json) as { candles: { close: number }[] }).candles.map((c) => c.close)).toEqual([1, 2, 4]);
  });

  it('keeps the cached answers within a byte budget, however many windows are asked for', () => {
    const { service, tick } = make();
    for (let i = 0; i < 2000; i++) tick(i * MIN, 100 + (i % 7));
    const now = T0 + 2000 * MIN;
    // 300 windows of 1000 one-minute candles (~190 KB each): ~57 MB if every one were kept.
    for (let i = 0; i < 300; i++) service.candles('BTC-USD', '1m', { fromMs: T0 + i * MIN, limit: 1000 }, now);
    expect(service.cacheBytes).toBeGreaterThan(1024 * 1024);
    expect(service.cacheBytes).toBeLessThanOrEqual(8 * 1024 * 1024);
  });
});
