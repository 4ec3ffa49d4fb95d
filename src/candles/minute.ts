import type { Candle, CandleGap, CandleSource } from '../shared/wire';

export const MINUTE_MS = 60_000;

/** Where a one-minute candle came from (`mixed` only arises when minutes are rolled up). */
export type MinuteSource = Exclude<CandleSource, 'mixed'>;

/** One one-minute candle as the store keeps it (times in epoch ms). */
export type Minute = {
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  ticks: number;
  /** Our first and last tick in it; null for a backfilled minute. */
  firstMs: number | null;
  lastMs: number | null;
  source: MinuteSource;
};

export const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS) * MINUTE_MS;

export function minuteFromTick(price: number, ms: number): Minute {
  return { start: minuteOf(ms), open: price, high: price, low: price, close: price, ticks: 1, firstMs: ms, lastMs: ms, source: 'live' };
}

/** Adds a tick to its minute; a tick older than the first one seen (out of order) becomes the open. */
export function addTick(m: Minute, price: number, ms: number): void {
  m.high = Math.max(m.high, price);
  m.low = Math.min(m.low, price);
  if (m.firstMs === null || ms < m.firstMs) {
    m.firstMs = ms;
    m.open = price;
  }
  if (m.lastMs === null || ms >= m.lastMs) {
    m.lastMs = ms;
    m.close = price;
  }
  m.ticks += 1;
  // A live tick in a backfilled minute makes it ours from then on.
  m.source = 'live';
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * Rolls minutes (sorted, all within [fromMs, toMs + intervalMs)) up into candles of
 * `intervalMs`, oldest first; a bucket without a minute has no candle. `openFrom`: the start of
 * the bucket that is still open (its candle is `closed: false`).
 */
export function rollUp(minutes: readonly Minute[], intervalMs: number, openFrom: number): Candle[] {
  const out: Candle[] = [];
  let current: Candle | undefined;
  let start = Number.NaN;
  let firstMs: number | null = null;
  let lastMs: number | null = null;
  const finish = (): void => {
    if (!current) return;
    current.first = iso(firstMs);
    current.last = iso(lastMs);
  };
  for (const m of minutes) {
    const bucket = Math.floor(m.start / intervalMs) * intervalMs;
    if (current && bucket === start) {
      current.high = Math.max(current.high, m.high);
      current.low = Math.min(current.low, m.low);
      current.close = m.close;
      current.ticks += m.ticks;
      if (current.source !== m.source) current.source = 'mixed';
      if (m.firstMs !== null && firstMs === null) firstMs = m.firstMs;
      if (m.lastMs !== null) lastMs = m.lastMs;
      continue;
    }
    finish();
    start = bucket;
    firstMs = m.firstMs;
    lastMs = m.lastMs;
    current = { time: new Date(bucket).toISOString(), open: m.open, high: m.high, low: m.low, close: m.close, ticks: m.ticks, first: null, last: null, source: m.source, closed: bucket < openFrom };
    out.push(current);
  }
  finish();
  return out;
}

/** The stretches of buckets in [fromMs, toMs] (bucket starts) that have no candle. */
export function gapsOf(candles: readonly Candle[], intervalMs: number, fromMs: number, toMs: number): CandleGap[] {
  const gaps: CandleGap[] = [];
  let expected = fromMs;
  const push = (from: number, to: number): void => {
    if (to > from) gaps.push({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  };
  for (const c of candles) {
    const t = Date.parse(c.time);
    push(expected, t);
    expected = t + intervalMs;
  }
  push(expected, toMs + intervalMs);
  return gaps;
}
