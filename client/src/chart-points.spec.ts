import type { Tick } from '@price-stream/client';
import type { Candle } from '../../src/shared/wire';
import { CandleCursor } from './chart-points';

const S = 1_763_758_800; // 2025-11-21T21:00:00Z in seconds
const tick = (id: string, atMs: number, price: number): Tick => ({
  id,
  pair: 'BTC-USD',
  price,
  timestamp: new Date(atMs).toISOString(),
  source: 'simulated',
});

describe(CandleCursor.name, () => {
  const candle = (sec: number, o: number, h: number, l: number, c: number): Candle => ({
    time: new Date(sec * 1000).toISOString(),
    open: o,
    high: h,
    low: l,
    close: c,
    ticks: 1,
    first: null,
    last: null,
    source: 'live',
    closed: true,
  });

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

describe('CandleCursor over wider ranges', () => {
  it('folds a tick into the 15-minute candle it falls in (the 24H range), and opens the next at the quarter hour', () => {
    const cursor = new CandleCursor(900);
    cursor.load([{ time: new Date(S * 1000).toISOString(), open: 10, high: 11, low: 9, close: 10, ticks: 0, first: null, last: null, source: 'kraken', closed: false }]);
    expect(cursor.next(tick('1-0', (S + 899) * 1000, 12))).toEqual({ time: S, open: 10, high: 12, low: 9, close: 12 });
    expect(cursor.next(tick('2-0', (S + 900) * 1000, 13))).toEqual({ time: S + 900, open: 13, high: 13, low: 13, close: 13 });
  });
});
