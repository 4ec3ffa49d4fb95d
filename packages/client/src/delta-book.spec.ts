import { tickDelta } from '../../../src/shared/tick-delta';
import { DeltaBook } from './delta-book';
import type { Tick } from '../../../src/shared/wire';

const btc: Tick = { id: '1-0', pair: 'BTC-USD', price: 100, timestamp: '2026-12-06T11:00:00.000Z', source: 'kraken', bid: 99, ask: 100 };

describe(DeltaBook.name, () => {
  it('applies a delta to the last tick of its pair, and the next one to that', () => {
    const book = new DeltaBook();
    book.full(btc);
    const next: Tick = { ...btc, id: '2-0', price: 101, timestamp: '2026-12-06T11:00:01.000Z', ask: 101 };
    const third: Tick = { ...next, id: '3-0', bid: 100.5 };
    expect(book.apply('2-0', tickDelta(btc, next))).toEqual(next);
    expect(book.apply('3-0', tickDelta(next, third))).toEqual(third);
  });

  it('gives null, never a tick, for a delta with no base, after a clear, or that is not a delta', () => {
    const book = new DeltaBook();
    expect(book.apply('2-0', ['BTC-USD', 101])).toBeNull();
    book.full(btc);
    expect(book.apply('2-0', ['BTC-USD', 'x'])).toBeNull();
    expect(book.apply(2, ['BTC-USD', 101])).toBeNull();
    expect(book.apply('2-0', 'BTC-USD')).toBeNull();
    book.clear();
    expect(book.apply('2-0', ['BTC-USD', 101])).toBeNull();
  });
});
