import { TICKER_FIELDS, type SourceName, type TickerField, type TickerFields } from '../shared/wire';
import { SourceError, type Quote, type SourceResult } from './price-source';

export type HttpSourceOptions = {
  /** The upstream's origin without a trailing slash, e.g. `https://api.kraken.com`. */
  baseUrl: string;
  timeoutMs: number;
  maxBytes: number;
};

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A plain decimal as upstreams write prices in strings: no sign, hex, `Infinity` or blanks. */
const DECIMAL = /^\d+(\.\d+)?([eE][-+]?\d+)?$/;

/**
 * A price as a finite number > 0 from an upstream field that is a number or a decimal string.
 * Missing fields are `bad_shape`; anything else that is not a usable price is `bad_price`.
 */
export function readPrice(source: SourceName, pair: string, raw: unknown): number | SourceError {
  if (raw === undefined || raw === null) return new SourceError(source, 'bad_shape', `${pair}: no price in the answer`);
  const price = typeof raw === 'number' ? raw : typeof raw === 'string' && DECIMAL.test(raw.trim()) ? Number(raw) : NaN;
  if (Number.isFinite(price) && price > 0) return price;
  return new SourceError(source, 'bad_price', `${pair}: ${JSON.stringify(raw).slice(0, 40)} is not a price`);
}

/** A number > 0 from an optional upstream field (number or decimal string); undefined otherwise. */
export function readOptional(raw: unknown): number | undefined {
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && DECIMAL.test(raw.trim()) ? Number(raw) : NaN;
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/**
 * The ticker fields that are usable numbers; an unusable one is left out, never the price. A
 * bid above the ask is a crossed or garbled book: both are left out.
 */
export function readTicker(raw: Partial<Record<TickerField, unknown>>): TickerFields {
  const out: TickerFields = {};
  for (const name of TICKER_FIELDS) {
    const value = readOptional(raw[name]);
    if (value !== undefined) out[name] = value;
  }
  if (out.bid !== undefined && out.ask !== undefined && out.bid > out.ask) {
    delete out.bid;
    delete out.ask;
  }
  return out;
}

/** Unix seconds (as upstreams give "last updated") to ISO-8601; undefined when not a plausible time. */
export function unixSecondsToIso(raw: unknown): string | undefined {
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw <= 0) return undefined;
  const ms = raw * 1000;
  return ms <= 8.64e15 ? new Date(ms).toISOString() : undefined;
}

/** Collects per-pair outcomes into a SourceResult. */
export class ResultBuilder {
  readonly quotes: Quote[] = [];
  readonly failed: SourceResult['failed'] = [];

  constructor(private readonly source: SourceName) {}

  /** Adds a quote with the usable ticker fields, or the failure readPrice found. */
  price(pair: string, raw: unknown, sourceTimestamp?: string, ticker: Partial<Record<TickerField, unknown>> = {}): void {
    const price = readPrice(this.source, pair, raw);
    if (price instanceof SourceError) this.fail(pair, price);
    else this.quotes.push({ pair, price, ...(sourceTimestamp !== undefined && { sourceTimestamp }), ...readTicker(ticker) });
  }

  fail(pair: string, error: SourceError): void {
    this.failed.push({ pair, error });
  }

  unknown(pair: string, detail = 'not listed by the upstream'): void {
    this.fail(pair, new SourceError(this.source, 'unknown_pair', `${pair}: ${detail}`));
  }

  build(): SourceResult {
    return { quotes: this.quotes, failed: this.failed };
  }
}

/**
 * Runs one request per pair, all at once, and merges the results. When every request failed as
 * a whole, that failure is thrown (a 429 first, for its Retry-After); when only some did, their
 * pairs are reported in `failed` and the answers for the others are kept.
 */
export async function fetchEach(pairs: readonly string[], fetchOne: (pair: string) => Promise<SourceResult>): Promise<SourceResult> {
  const settled = await Promise.allSettled(pairs.map(fetchOne));
  const result: SourceResult = { quotes: [], failed: [] };
  const thrown: SourceError[] = [];
  for (const [i, s] of settled.entries()) {
    if (s.status === 'fulfilled') {
      result.quotes.push(...s.value.quotes);
      result.failed.push(...s.value.failed);
    } else if (s.reason instanceof SourceError) {
      thrown.push(s.reason);
      result.failed.push({ pair: pairs[i], error: s.reason });
    } else {
      throw s.reason; // an abort by the caller
    }
  }
  if (pairs.length > 0 && thrown.length === pairs.length) throw thrown.find((e) => e.kind === 'rate_limited') ?? thrown[0];
  return result;
}
