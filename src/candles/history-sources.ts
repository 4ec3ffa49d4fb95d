import { splitPair } from '../domain/pair';
import { pctApart, PRICE_RANGE } from '../ingest/price-checks';
import { fetchJson } from '../sources/http-fetch';
import { krakenAltname, krakenResultKeys } from '../sources/kraken.source';
import { SourceError } from '../sources/price-source';
import { mulberry32 } from '../sources/simulated.source';
import { isRecord } from '../sources/source-helpers';
import { MINUTE_MS, minuteOf, type Minute, type MinuteSource } from './minute';

/** Coinbase Exchange answers at most 300 candles per request. */
export const COINBASE_PAGE_MINUTES = 300;
/** How far back the exchanges are asked (Kraken's 720 one-minute entries are 12 hours). */
export const BACKFILL_SPAN_MS = 24 * 3_600_000;

export type HistoryFetch = { timeoutMs: number; maxBytes: number; signal?: AbortSignal };

/** One source of one-minute history: the closed minutes it has, oldest first. */
export type HistorySource = { readonly name: Exclude<MinuteSource, 'live'>; minutes(pair: string, nowMs: number, reference: number | undefined, signal?: AbortSignal): Promise<Minute[]> };

const num = (v: unknown): number => (typeof v === 'string' ? Number(v) : typeof v === 'number' ? v : NaN);

function backfilled(source: Exclude<MinuteSource, 'live'>, startMs: number, open: number, high: number, low: number, close: number): Minute {
  return { start: startMs, open, high, low, close, ticks: 0, firstMs: null, lastMs: null, source };
}

/**
 * The same checks a price gets, for a candle: every price finite and within PRICE_RANGE, a
 * consistent OHLC (low ≤ open, close ≤ high), a whole minute, closed (before the open minute)
 * and not older than the span asked for.
 */
export function plausibleMinute(m: Minute, nowMs: number, spanMs = BACKFILL_SPAN_MS): boolean {
  const prices = [m.open, m.high, m.low, m.close];
  if (!prices.every((p) => Number.isFinite(p) && p >= PRICE_RANGE.min && p <= PRICE_RANGE.max)) return false;
  if (m.low > Math.min(m.open, m.close) || m.high < Math.max(m.open, m.close)) return false;
  return m.start % MINUTE_MS === 0 && m.start < minuteOf(nowMs) && m.start >= nowMs - spanMs;
}

/**
 * Keeps the plausible minutes, oldest first; throws `implausible` when the newest of them does not
 * agree with the live price at the seam (within `maxJumpPct`), since then all of them are suspect.
 */
export function checkHistory(source: HistorySource['name'], pair: string, minutes: readonly Minute[], nowMs: number, reference: number | undefined, maxJumpPct: number): Minute[] {
  const kept = minutes.filter((m) => plausibleMinute(m, nowMs)).sort((a, b) => a.start - b.start);
  const newest = kept.at(-1);
  if (newest && reference !== undefined && pctApart(newest.close, reference) > maxJumpPct) {
    throw new SourceError(source, 'implausible', `${pair}: history ends at ${newest.close}, ${pctApart(newest.close, reference).toFixed(1)} % from the live ${reference}`);
  }
  return kept;
}

/**
 * Kraken `GET /0/public/OHLC?pair=XBTUSD&interval=1`: up to 720 entries
 * `[time (s), open, high, low, close, vwap, volume, count]` under the pair's result key; the last
 * is the minute still open (left out). An entry with count 0 is Kraken's flat filler for a minute
 * without trades: left out, so that it stays a gap.
 */
export function parseKrakenOhlc(body: unknown, pair: string): Minute[] {
  if (!isRecord(body)) throw new SourceError('kraken', 'bad_shape', 'OHLC: not an object');
  if (Array.isArray(body.error) && body.error.length > 0) throw new SourceError('kraken', 'upstream_error', `OHLC: ${body.error.map(String).join('; ')}`);
  const result = body.result;
  if (!isRecord(result)) throw new SourceError('kraken', 'bad_shape', 'OHLC: no result');
  const key = krakenResultKeys(pair).find((k) => Array.isArray(result[k]));
  if (!key) throw new SourceError('kraken', 'unknown_pair', `OHLC: no entries for ${pair}`);
  const out: Minute[] = [];
  for (const row of result[key] as unknown[]) {
    if (!Array.isArray(row) || row.length < 8) continue;
    if (num(row[7]) === 0) continue;
    out.push(backfilled('kraken', num(row[0]) * 1000, num(row[1]), num(row[2]), num(row[3]), num(row[4])));
  }
  return out;
}

/** Coinbase Exchange `GET /products/BTC-USD/candles`: newest first, `[time (s), low, high, open, close, volume]`. */
export function parseCoinbaseCandles(body: unknown): Minute[] {
  if (!Array.isArray(body)) throw new SourceError('coinbase', 'bad_shape', 'candles: not an array');
  const out: Minute[] = [];
  for (const row of body) {
    if (!Array.isArray(row) || row.length < 5) continue;
    out.push(backfilled('coinbase', num(row[0]) * 1000, num(row[3]), num(row[2]), num(row[1]), num(row[4])));
  }
  return out;
}

export function krakenHistory(baseUrl: string, http: HistoryFetch): HistorySource {
  return {
    name: 'kraken',
    async minutes(pair, _nowMs, _reference, signal) {
      const url = `${baseUrl}/0/public/OHLC?pair=${encodeURIComponent(krakenAltname(pair))}&interval=1`;
      return parseKrakenOhlc(await fetchJson('kraken', url, { ...http, signal }), pair);
    },
  };
}

/** Pages of 300 minutes back from the open minute, to BACKFILL_SPAN_MS. */
export function coinbaseExchangeHistory(baseUrl: string, http: HistoryFetch): HistorySource {
  return {
    name: 'coinbase',
    async minutes(pair, nowMs, _reference, signal) {
      const out: Minute[] = [];
      const open = minuteOf(nowMs);
      for (let end = open; end > open - BACKFILL_SPAN_MS; end -= COINBASE_PAGE_MINUTES * MINUTE_MS) {
        const start = Math.max(end - COINBASE_PAGE_MINUTES * MINUTE_MS, open - BACKFILL_SPAN_MS);
        const query = `granularity=60&start=${new Date(start).toISOString()}&end=${new Date(end - MINUTE_MS).toISOString()}`;
        const url = `${baseUrl}/products/${encodeURIComponent(pair)}/candles?${query}`;
        // A shutdown ends the paging at once (fetchJson throws the signal's reason).
        out.push(...parseCoinbaseCandles(await fetchJson('coinbase', url, { ...http, signal })));
      }
      return out;
    },
  };
}

/** Where the simulated walk starts when there is no live price yet (as SimulatedSource does). */
const SIMULATED_START: Readonly<Record<string, number>> = { BTC: 97_000, ETH: 3_500 };

/**
 * A plausible day of one-minute history for the offline demo, labelled simulated: a random walk
 * run backwards from the live price (so that it meets it at the seam), reproducible from the seed.
 */
export function simulatedHistory(seed: number, spanMs = BACKFILL_SPAN_MS): HistorySource {
  return {
    name: 'simulated',
    minutes(pair, nowMs, reference) {
      let h = 0x811c9dc5;
      for (let i = 0; i < pair.length; i++) h = Math.imul(h ^ pair.charCodeAt(i), 0x01000193);
      const random = mulberry32((seed ^ h ^ 0x5bd1e995) >>> 0);
      const open = minuteOf(nowMs);
      let close = reference ?? SIMULATED_START[splitPair(pair).base] ?? 100;
      const out: Minute[] = [];
      for (let start = open - MINUTE_MS; start >= open - spanMs + MINUTE_MS; start -= MINUTE_MS) {
        // About 0.05 % a minute, as a liquid pair moves.
        const openPrice = close * (1 + (random() - 0.5) * 0.001);
        const high = Math.max(openPrice, close) * (1 + random() * 0.0003);
        const low = Math.min(openPrice, close) * (1 - random() * 0.0003);
        const round = (p: number) => Number(p.toPrecision(8));
        out.push(backfilled('simulated', start, round(openPrice), round(high), round(low), round(close)));
        close = openPrice;
      }
      return Promise.resolve(out.reverse());
    },
  };
}
