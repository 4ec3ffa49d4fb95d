import type { PairInfo } from '../../src/shared/wire';
import type { Tick } from '@price-stream/client';
import { direction, type Direction } from './format';

/** What one card shows. `candlesOpen24h`: the price 24 hours ago by the server's candles (null until known). */
export type PairRow = {
  pair: string;
  latest: Tick | null;
  candlesOpen24h: number | null;
};

export type SortKey = 'name' | 'price' | 'change';
export const SORT_KEYS: readonly SortKey[] = ['name', 'price', 'change'];

export function isSortKey(value: string): value is SortKey {
  return (SORT_KEYS as readonly string[]).includes(value);
}

/** A 24 h change as a fraction (0.01 = +1 %), and whose figure it is built on. */
export type Change24h = { fraction: number; base: number; from: 'ticker' | 'candles' };

/**
 * The change over 24 hours: from the exchange's ticker (the tick's `open24h`) when the tick
 * carries it, else from the server's candles (the price 24 hours ago); null when neither is known.
 */
export function change24h(row: PairRow): Change24h | null {
  const tick = row.latest;
  if (tick === null) return null;
  const [base, from] = tick.open24h !== undefined && tick.open24h > 0 ? [tick.open24h, 'ticker' as const] : [row.candlesOpen24h, 'candles' as const];
  if (base === null || !(base > 0)) return null;
  return { fraction: (tick.price - base) / base, base, from };
}

export function changeOf(row: PairRow): number | null {
  return change24h(row)?.fraction ?? null;
}

/** Every pair's latest tick and baseline; `apply` says which way a new tick moved the price. */
export class PairBook {
  private readonly rows = new Map<string, PairRow>();

  constructor(pairs: readonly PairInfo[]) {
    for (const { pair, latest } of pairs) this.rows.set(pair, { pair, latest, candlesOpen24h: null });
  }

  get pairs(): string[] {
    return [...this.rows.keys()];
  }

  get(pair: string): PairRow | undefined {
    return this.rows.get(pair);
  }

  all(): PairRow[] {
    return [...this.rows.values()];
  }

  /** Null for a pair the page does not show. */
  apply(tick: Tick): Direction | null {
    const row = this.rows.get(tick.pair);
    if (!row) return null;
    const moved = row.latest === null ? 'flat' : direction(row.latest.price, tick.price);
    row.latest = tick;
    return moved;
  }

  /** The price 24 hours ago, from the server's candles. */
  setCandlesOpen24h(pair: string, price: number | null): void {
    const row = this.rows.get(pair);
    if (row) row.candlesOpen24h = price;
  }
}

/** `BTC-EUR` → `EUR`. */
export const quoteOf = (pair: string): string => pair.split('-')[1] ?? '';

/** The pairs to show, in order: a case-insensitive match on the name (`btc/usd` finds `BTC-USD`). */
export function selectRows(rows: readonly PairRow[], query: string, sort: SortKey): PairRow[] {
  const q = query.trim().toUpperCase().replace(/[/\s]+/g, '-');
  const shown = q === '' ? [...rows] : rows.filter((r) => r.pair.includes(q));
  const byName = (a: PairRow, b: PairRow): number => a.pair.localeCompare(b.pair);
  // Highest first; pairs without a value go last, by name.
  const desc = (value: (r: PairRow) => number | null) => (a: PairRow, b: PairRow): number => {
    const va = value(a);
    const vb = value(b);
    if (va === null || vb === null) return va === vb ? byName(a, b) : va === null ? 1 : -1;
    return vb - va || byName(a, b);
  };
  const byPrice = desc((r) => r.latest?.price ?? null);
  // A euro price and a dollar price do not compare: group by quote currency, then highest first.
  const byQuoteThenPrice = (a: PairRow, b: PairRow): number => quoteOf(a.pair).localeCompare(quoteOf(b.pair)) || byPrice(a, b);
  const compare = sort === 'name' ? byName : sort === 'price' ? byQuoteThenPrice : desc(changeOf);
  return shown.sort(compare);
}
