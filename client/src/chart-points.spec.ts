import type { Tick } from '@price-stream/client';
import { CandleCursor, ChartCursor } from './chart-points';

const S = 1_763_758_800; // 2025-11-21T21:00:00Z in seconds
const tick = (id: string, atMs: number, price: number): Tick => ({
  id,
  pair: 'BTC-USD',
  price,
  timestamp: new Date(atMs).toISOString(),
  source: 'simulated',
});

describe(ChartCursor.name, () => {
  it('merges ticks of the same second into one point with the latest price when loading history', () => {
    const c = new ChartCursor();
    const points = c.load([tick('1-0', S * 1000 + 100, 1), tick('1-1', S * 1000 + 900, 2), tick('2-0', (S + 1) * 1000, 3)]);
    expect(points).toEqual([
      { time: S, value: 2 },
      { time: S + 1, value: 3 },
    ]);
    expect(c.drawnId).toBe('2-0');
  });

  it('skips a live tick already drawn from history when a resume replays it', () => {
    const c = new ChartCursor();
    c.load([tick('5-0', S * 1000, 1)]);
    expect(c.next(tick('5-0', S * 1000, 1))).toBeNull();
    expect(c.next(tick('4-9', S * 1000, 1))).toBeNull();
    expect(c.next(tick('6-0', (S + 2) * 1000, 7))).toEqual({ time: S + 2, value: 7 });
  });

  it('gives the same time again for a tick in the last second so that update replaces the point', () => {
    const c = new ChartCursor();
    c.load([tick('5-0', S * 1000 + 10, 1)]);
    expect(c.next(tick('5-1', S * 1000 + 500, 2))).toEqual({ time: S, value: 2 });
  });

  it('skips a tick whose time is before the last point even when its id is newer', () => {
    const c = new ChartCursor();
    c.load([tick('5-0', (S + 10) * 1000, 1)]);
    expect(c.next(tick('6-0', S * 1000, 2))).toBeNull();
    expect(c.drawnId).toBe('5-0');
  });

  it('starts afresh when history is loaded again after a reset', () => {
    const c = new ChartCursor();
    c.load([tick('9-0', (S + 10) * 1000, 1)]);
    expect(c.load([tick('1-0', S * 1000, 5)])).toEqual([{ time: S, value: 5 }]);
  });
});

describe(CandleCursor.name, () => {
  const candle = (sec: number, o: number, h: number, l: number, c: number) => ({ time: new Date(sec * 1000).toISOString(), open: o, high: h, low: l, close: c, ticks: 1 });

  it('loads the server candles as chart points in seconds', () => {
    const cursor = new CandleCursor(60);
    expect(cursor.load([candle(S, 1, 3, 1, 2), candle(S + 60, 2, 2, 2, 2)])).toEqual([
      { time: S, open: 1, high: 3, low: 1, close: 2 },
      { time: S + 60, open: 2, high: 2, low: 2, close: 2 },
    ]);
  });

  it('folds a live tick into the last candle, and opens the next candle when the interval ends', () => {
    const cursor = new CandleCursor(60);
    cursor.load([candle(S, 100, 105, 98, 101)]);
    expect(cursor.next(tick('1-0', (S + 30) * 1000, 107))).toEqual({ time: S, open: 100, high: 107, low: 98, close: 107 });
    expect(cursor.next(tick('2-0', (S + 40) * 1000, 97))).toEqual({ time: S, open: 100, high: 107, low: 97, close: 97 });
    expect(cursor.next(tick('3-0', (S + 61) * 1000, 99))).toEqual({ time: S + 60, open: 99, high: 99, low: 99, close: 99 });
  });

  it('ignores a tick older than the last candle, and starts from the first tick without candles', () => {
    const cursor = new CandleCursor(60);
    cursor.load([candle(S + 60, 1, 1, 1, 1)]);
    expect(cursor.next(tick('1-0', (S + 10) * 1000, 5))).toBeNull();
    const empty = new CandleCursor(60);
    empty.load([]);
    expect(empty.next(tick('1-0', (S + 10) * 1000, 5))).toEqual({ time: S, open: 5, high: 5, low: 5, close: 5 });
  });
});
