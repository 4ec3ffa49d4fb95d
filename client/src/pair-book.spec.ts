import type { Tick } from '../../src/shared/wire';
import { change24h, changeOf, PairBook, selectRows, type PairRow } from './pair-book';

// The wire's tick (what /api/pairs gives), which the library's open tick type also takes.
const tick = (pair: string, price: number, id = '1-0'): Tick => ({ id, pair, price, timestamp: '2026-11-21T21:00:00.000Z', source: 'kraken' });
const row = (pair: string, price: number | null, candlesOpen24h: number | null): PairRow => ({
  pair,
  latest: price === null ? null : tick(pair, price),
  candlesOpen24h,
});

describe(PairBook.name, () => {
  it('gives no change before the price of 24 hours ago is known: not a change since the page opened', () => {
    const book = new PairBook([{ pair: 'BTC-USD', latest: tick('BTC-USD', 100), fresh: true }]);
    book.apply(tick('BTC-USD', 102, '2-0'));
    expect(changeOf(book.get('BTC-USD')!)).toBeNull();
    book.setCandlesOpen24h('BTC-USD', 96);
    expect(change24h(book.get('BTC-USD')!)).toEqual({ fraction: (102 - 96) / 96, base: 96, from: 'candles' });
  });

  it("takes the exchange's 24 h open when the tick carries it, before the candles'", () => {
    const book = new PairBook([{ pair: 'ETH-USD', latest: null, fresh: false }]);
    book.setCandlesOpen24h('ETH-USD', 40);
    expect(book.apply({ ...tick('ETH-USD', 50), open24h: 25 })).toBe('flat');
    expect(change24h(book.get('ETH-USD')!)).toEqual({ fraction: 1, base: 25, from: 'ticker' });
  });

  it('tells the direction of each move and ignores pairs it does not show', () => {
    const book = new PairBook([{ pair: 'BTC-USD', latest: tick('BTC-USD', 100), fresh: true }]);
    expect(book.apply(tick('BTC-USD', 101))).toBe('up');
    expect(book.apply(tick('BTC-USD', 99))).toBe('down');
    expect(book.apply(tick('DOGE-USD', 1))).toBeNull();
  });
});

describe('selectRows', () => {
  const rows = [row('ETH-USD', 3000, 3300), row('BTC-USD', 97000, 96000), row('BTC-EUR', null, null), row('SOL-USD', 150, 150)];
  const names = (rs: PairRow[]) => rs.map((r) => r.pair);

  it('sorts by name alphabetically', () => {
    expect(names(selectRows(rows, '', 'name'))).toEqual(['BTC-EUR', 'BTC-USD', 'ETH-USD', 'SOL-USD']);
  });

  it('sorts by price within each quote currency, highest first, unpriced pairs last in theirs', () => {
    expect(names(selectRows(rows, '', 'price'))).toEqual(['BTC-EUR', 'BTC-USD', 'ETH-USD', 'SOL-USD']);
    const mixed = [row('ETH-EUR', 2800, 2800), row('BTC-USD', 97000, 97000), row('BTC-EUR', 90000, 90000), row('XRP-USD', null, null), row('ETH-USD', 3000, 3000)];
    expect(names(selectRows(mixed, '', 'price'))).toEqual(['BTC-EUR', 'ETH-EUR', 'BTC-USD', 'ETH-USD', 'XRP-USD']);
  });

  it('sorts by change highest first with unpriced pairs last', () => {
    expect(names(selectRows(rows, '', 'change'))).toEqual(['BTC-USD', 'SOL-USD', 'ETH-USD', 'BTC-EUR']);
  });

  it('filters case-insensitively and accepts a slash for the dash', () => {
    expect(names(selectRows(rows, ' btc ', 'name'))).toEqual(['BTC-EUR', 'BTC-USD']);
    expect(names(selectRows(rows, 'eth/usd', 'name'))).toEqual(['ETH-USD']);
    expect(selectRows(rows, 'xrp', 'name')).toEqual([]);
  });

  it('leaves the input array in its order', () => {
    const copy = [...rows];
    selectRows(rows, '', 'price');
    expect(rows).toEqual(copy);
  });
});
