import type { Tick } from '../../src/shared/wire';
import { changeOf, PairBook, selectRows, type PairRow } from './pair-book';

// The wire's tick (what /api/pairs gives), which the library's open tick type also takes.
const tick = (pair: string, price: number, id = '1-0'): Tick => ({ id, pair, price, timestamp: '2026-11-21T21:00:00.000Z', source: 'kraken' });
const row = (pair: string, price: number | null, openPrice: number | null): PairRow => ({
  pair,
  latest: price === null ? null : tick(pair, price),
  openPrice,
});

describe(PairBook.name, () => {
  it('takes the price known when the page opened as the baseline of the change', () => {
    const book = new PairBook([{ pair: 'BTC-USD', latest: tick('BTC-USD', 100), fresh: true }]);
    book.apply(tick('BTC-USD', 102, '2-0'));
    const r = book.get('BTC-USD');
    expect(r?.openPrice).toBe(100);
    expect(r && changeOf(r)).toBeCloseTo(0.02);
  });

  it('takes the first tick as the baseline when the pair had no price yet', () => {
    const book = new PairBook([{ pair: 'ETH-USD', latest: null, fresh: false }]);
    expect(book.apply(tick('ETH-USD', 50))).toBe('flat');
    expect(book.get('ETH-USD')?.openPrice).toBe(50);
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
