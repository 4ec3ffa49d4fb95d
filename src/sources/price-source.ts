import type { SourceName, TickerFields } from '../shared/wire';

/** One price as an upstream gave it, mapped to our pair name, with the ticker fields it gave. */
export type Quote = { pair: string; price: number; sourceTimestamp?: string } & TickerFields;

export type SourceErrorKind =
  | 'http_status' // a non-200 answer other than 429
  | 'rate_limited' // 429; retryAfterMs from Retry-After when present
  | 'timeout'
  | 'network'
  | 'bad_json'
  | 'bad_shape' // valid JSON, but a field is missing or of the wrong type
  | 'bad_price' // not a finite number > 0
  | 'unknown_pair' // the upstream does not list this pair
  | 'upstream_error' // a 200 whose body reports an error (Kraken `error`, CoinDesk `Err`)
  | 'too_large' // the body passed SOURCE_MAX_BODY_BYTES
  | 'stale' // the upstream's own time for the price is older than STALE_AFTER_MS
  | 'implausible'; // out of range, or contradicted by the other sources

export class SourceError extends Error {
  constructor(
    readonly source: SourceName,
    readonly kind: SourceErrorKind,
    message: string,
    readonly retryAfterMs?: number,
    /** The HTTP status, when the upstream answered with one other than 200. */
    readonly status?: number,
  ) {
    super(`${source}: ${message}`);
    this.name = 'SourceError';
  }

  /** Problems of one pair leave the source usable for the others; the rest count against its circuit. */
  get isPairLevel(): boolean {
    return this.kind === 'unknown_pair' || this.kind === 'bad_price';
  }
}

/**
 * What one request brought: prices for some pairs, and why the others have none. Entries in
 * `failed` concern those pairs only: the failover policy tries them on the next source and
 * does not hold them against this source's circuit. A failure of the whole request is thrown
 * instead.
 */
export type SourceResult = { quotes: Quote[]; failed: { pair: string; error: SourceError }[] };

/**
 * One upstream. A source only fetches and maps: when to fetch, failover, backoff and
 * publication live in the ingest (src/ingest). Request-level failures throw a SourceError;
 * when the caller aborts `signal`, `fetch` rejects with the signal's reason instead (not a
 * failure).
 */
export interface PriceSource {
  readonly name: SourceName;
  /** Whether one request can carry several pairs. */
  readonly batches: boolean;
  /** Whether this source can price the pair at all (its symbol mapping knows it). */
  supports(pair: string): boolean;
  fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult>;
}
