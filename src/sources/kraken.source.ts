import { splitPair } from '../domain/pair';
import { fetchJson } from './http-fetch';
import { SourceError, type PriceSource, type SourceResult } from './price-source';
import { fetchEach, isRecord, ResultBuilder, type HttpSourceOptions } from './source-helpers';

/** Where Kraken's asset codes differ from the common ones. */
const KRAKEN_ASSETS: Readonly<Record<string, string>> = { BTC: 'XBT', DOGE: 'XDG' };
/** Legacy pair names prefix fiat codes with Z and crypto codes with X (`XXBTZUSD`). */
const FIAT = new Set(['USD', 'EUR', 'GBP', 'JPY', 'CAD', 'CHF', 'AUD']);

const krakenAsset = (code: string): string => KRAKEN_ASSETS[code] ?? code;

/** The name to request a pair by: `BTC-USD` → `XBTUSD`. */
export function krakenAltname(pair: string): string {
  const { base, quote } = splitPair(pair);
  return `${krakenAsset(base)}${krakenAsset(quote)}`;
}

/**
 * The result keys Kraken may answer a pair under: its altname (`SOLUSD`, `XBTUSDT`) or, for
 * the older three-letter assets, the X/Z-prefixed legacy name (`XXBTZUSD`, `XETHXXBT`).
 */
export function krakenResultKeys(pair: string): string[] {
  const { base, quote } = splitPair(pair);
  const b = krakenAsset(base);
  const q = krakenAsset(quote);
  const keys = [`${b}${q}`];
  if (b.length === 3 && q.length === 3) {
    const prefix = (code: string): string => (FIAT.has(code) ? 'Z' : 'X');
    keys.push(`${prefix(b)}${b}${prefix(q)}${q}`, `X${b}Z${q}`, `X${b}X${q}`);
  }
  return [...new Set(keys)];
}

const first = (v: unknown): unknown => (Array.isArray(v) ? v[0] : undefined);
/** Kraken's `h`, `l` and `v` are `[today, last 24 hours]`. */
const second = (v: unknown): unknown => (Array.isArray(v) ? v[1] : undefined);

/**
 * Kraken REST ticker, batched: `GET /0/public/Ticker?pair=XBTUSD,ETHUSD`; the last trade price
 * is `c[0]`, a decimal string; `b[0]`/`a[0]` the best bid/ask; `h[1]`, `l[1]`, `v[1]` the last
 * 24 hours; `o` the open of the UTC day (Kraken's REST ticker has no rolling 24 h open).
 * Kraken gives no time for a ticker, so there is no sourceTimestamp.
 */
export class KrakenSource implements PriceSource {
  readonly name = 'kraken' as const;
  readonly batches = true;
  /** Pairs Kraken answered "Unknown asset pair" for; not asked again. */
  private readonly unlisted = new Set<string>();

  constructor(private readonly options: HttpSourceOptions) {}

  supports(pair: string): boolean {
    return !this.unlisted.has(pair);
  }

  async fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    const known = pairs.filter((pair) => this.supports(pair));
    const result = known.length > 0 ? await this.request(known, signal) : { quotes: [], failed: [] };
    for (const pair of pairs) {
      if (!known.includes(pair)) result.failed.push({ pair, error: new SourceError(this.name, 'unknown_pair', `${pair}: not listed by Kraken`) });
    }
    return result;
  }

  private async request(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    const url = `${this.options.baseUrl}/0/public/Ticker?pair=${pairs.map(krakenAltname).join(',')}`;
    const body = await fetchJson(this.name, url, { signal, timeoutMs: this.options.timeoutMs, maxBytes: this.options.maxBytes });
    if (!isRecord(body) || !Array.isArray(body.error)) throw this.error('bad_shape', 'no "error" array in the answer');

    const errors = body.error.map(String);
    if (errors.length > 0) {
      if (errors.some((e) => e.startsWith('EQuery:Unknown asset pair'))) {
        // Kraken fails the whole batch for one unknown pair without naming it: ask one by one.
        if (pairs.length > 1) return fetchEach(pairs, (pair) => this.request([pair], signal));
        this.unlisted.add(pairs[0]);
        const out = new ResultBuilder(this.name);
        out.unknown(pairs[0], `Kraken does not list ${krakenAltname(pairs[0])}`);
        return out.build();
      }
      if (errors.some((e) => /too many requests|rate limit/i.test(e))) throw this.error('rate_limited', errors.join('; '));
      throw this.error('upstream_error', errors.join('; '));
    }
    if (!isRecord(body.result)) throw this.error('bad_shape', 'no "result" object in the answer');

    const result = body.result;
    const resultKeys = Object.keys(result);
    const out = new ResultBuilder(this.name);
    for (const pair of pairs) {
      // The answer's own key names the pair; an entry under another key is never taken for it.
      const key = krakenResultKeys(pair).find((k) => k in result);
      if (key === undefined) {
        const others = resultKeys.filter((k) => !pairs.some((p) => krakenResultKeys(p).includes(k)));
        if (others.length > 0) out.fail(pair, this.error('bad_shape', `${pair}: the answer is for ${others.slice(0, 3).join(', ')}`));
        else out.unknown(pair, `no entry for ${krakenAltname(pair)} in the answer`);
        continue;
      }
      const entry = result[key];
      if (!isRecord(entry) || !Array.isArray(entry.c)) {
        out.fail(pair, this.error('bad_shape', `${pair}: no "c" (last trade) array for ${key}`));
        continue;
      }
      out.price(pair, entry.c[0], undefined, {
        bid: first(entry.b),
        ask: first(entry.a),
        open24h: entry.o,
        high24h: second(entry.h),
        low24h: second(entry.l),
        volume24h: second(entry.v),
      });
    }
    return out.build();
  }

  private error(kind: SourceError['kind'], message: string): SourceError {
    return new SourceError(this.name, kind, message);
  }
}
