import { MinuteBook } from './minute-book';
import { gapsOf, rollUp, type Minute } from './minute';

const MIN = 60_000;
const T0 = Date.parse('2026-11-21T21:00:00.000Z');
const DAY = 86_400_000;
const backfilled = (start: number, close: number): Minute => ({ start, open: close, high: close, low: close, close, ticks: 0, firstMs: null, lastMs: null, source: 'kraken' });

describe(MinuteBook.name, () => {
  it('makes one-minute candles of ticks: open, high, low, close, count, first and last tick time', () => {
    const book = new MinuteBook(DAY);
    for (const [ms, price] of [[1000, 100], [10_000, 105], [20_000, 98], [59_999, 99], [MIN, 101]]) book.addTick('BTC-USD', price, T0 + ms, T0 + MIN);
    expect(book.range('BTC-USD', T0, T0 + 2 * MIN)).toEqual([
      { start: T0, open: 100, high: 105, low: 98, close: 99, ticks: 4, firstMs: T0 + 1000, lastMs: T0 + 59_999, source: 'live' },
      { start: T0 + MIN, open: 101, high: 101, low: 101, close: 101, ticks: 1, firstMs: T0 + MIN, lastMs: T0 + MIN, source: 'live' },
    ]);
  });

  it('puts a late tick into its own minute, in order, and says that a closed minute changed', () => {
    const book = new MinuteBook(DAY);
    book.addTick('BTC-USD', 100, T0, T0);
    book.addTick('BTC-USD', 102, T0 + 3 * MIN, T0 + 3 * MIN);
    const generation = book.generation('BTC-USD');
    book.addTick('BTC-USD', 101, T0 + MIN + 5, T0 + 3 * MIN);
    expect(book.range('BTC-USD', 0, Infinity).map((m) => m.close)).toEqual([100, 101, 102]);
    expect(book.generation('BTC-USD')).toBeGreaterThan(generation);
  });

  it('says a closed minute changed when the first tick of a minute that has ended arrives after it', () => {
    const book = new MinuteBook(DAY);
    book.addTick('BTC-USD', 100, T0, T0);
    const generation = book.generation('BTC-USD');
    // Stamped in the second minute, arriving in the third: a cached answer of closed minutes lacks it.
    book.addTick('BTC-USD', 101, T0 + MIN + 59_000, T0 + 2 * MIN + 100);
    expect(book.generation('BTC-USD')).toBeGreaterThan(generation);
    // The first tick of the minute now running changes no closed minute.
    const now = book.generation('BTC-USD');
    book.addTick('BTC-USD', 102, T0 + 2 * MIN + 200, T0 + 2 * MIN + 200);
    expect(book.generation('BTC-USD')).toBe(now);
  });

  it('fills only minutes it has no candle for: a backfill never overwrites a live minute', () => {
    const book = new MinuteBook(DAY);
    book.addTick('BTC-USD', 100, T0 + 5, T0 + 5);
    const added = book.fill('BTC-USD', [backfilled(T0 - MIN, 90), backfilled(T0, 91)], T0 + 10);
    expect(added.map((m) => m.start)).toEqual([T0 - MIN]);
    expect(book.range('BTC-USD', 0, Infinity).map((m) => [m.close, m.source])).toEqual([
      [90, 'kraken'],
      [100, 'live'],
    ]);
  });

  it('keeps at most the retention: older minutes are dropped as time passes, and a backfill past it is refused', () => {
    const book = new MinuteBook(10 * MIN);
    book.addTick('BTC-USD', 100, T0, T0);
    expect(book.fill('BTC-USD', [backfilled(T0 - 20 * MIN, 1)], T0)).toEqual([]);
    book.addTick('BTC-USD', 101, T0 + 5 * MIN, T0 + 5 * MIN);
    book.addTick('BTC-USD', 102, T0 + 11 * MIN, T0 + 11 * MIN);
    expect(book.range('BTC-USD', 0, Infinity).map((m) => m.close)).toEqual([101, 102]);
    book.prune(T0 + 16 * MIN);
    expect(book.range('BTC-USD', 0, Infinity).map((m) => m.close)).toEqual([102]);
  });
});

describe(rollUp.name, () => {
  const minutes: Minute[] = [
    { start: T0, open: 100, high: 105, low: 99, close: 101, ticks: 3, firstMs: T0 + 1, lastMs: T0 + 50_000, source: 'live' },
    { ...backfilled(T0 + MIN, 102), high: 110 },
    { ...backfilled(T0 + 7 * MIN, 103), low: 90 },
  ];

  it('aligns wider candles to the epoch, labels a mix of sources, and marks only the open bucket', () => {
    expect(rollUp(minutes, 5 * MIN, T0 + 5 * MIN)).toEqual([
      { time: '2026-11-21T21:00:00.000Z', open: 100, high: 110, low: 99, close: 102, ticks: 3, first: new Date(T0 + 1).toISOString(), last: new Date(T0 + 50_000).toISOString(), source: 'mixed', closed: true },
      { time: '2026-11-21T21:05:00.000Z', open: 103, high: 103, low: 90, close: 103, ticks: 0, first: null, last: null, source: 'kraken', closed: false },
    ]);
  });

  it('lists the buckets without data as gaps instead of inventing flat candles', () => {
    const candles = rollUp(minutes, MIN, T0 + 8 * MIN);
    expect(candles).toHaveLength(3);
    expect(gapsOf(candles, MIN, T0 - MIN, T0 + 9 * MIN)).toEqual([
      { from: '2026-11-21T20:59:00.000Z', to: '2026-11-21T21:00:00.000Z' },
      { from: '2026-11-21T21:02:00.000Z', to: '2026-11-21T21:07:00.000Z' },
      { from: '2026-11-21T21:08:00.000Z', to: '2026-11-21T21:10:00.000Z' },
    ]);
  });
});
