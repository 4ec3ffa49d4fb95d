import type { SourceName } from '../shared/wire';
import { SourceError } from './price-source';

export type FetchJsonOptions = {
  /** The caller's signal (shutdown, poll cancelled). Aborting it rejects with its reason. */
  signal?: AbortSignal;
  timeoutMs: number;
  /** The body is read as a stream and given up on past this many bytes. */
  maxBytes: number;
  headers?: Record<string, string>;
};

/** A Retry-After beyond this is taken as garbage, so that one header cannot silence a source for days. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * GETs a URL and parses its JSON body, mapping every way it can go wrong to a SourceError:
 * `timeout`, `network`, `rate_limited` (429, with Retry-After), `http_status` (any other
 * non-200), `too_large`, `bad_json`. Only an abort by the caller's own signal escapes as-is.
 */
export async function fetchJson(source: SourceName, url: string, options: FetchJsonOptions): Promise<unknown> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const fail = (err: unknown, during: string): never => {
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout.aborted) throw new SourceError(source, 'timeout', `no complete answer within ${options.timeoutMs} ms`);
    throw new SourceError(source, 'network', `${during}: ${describe(err)}`);
  };

  let res: Response;
  try {
    res = await fetch(url, { signal, headers: { accept: 'application/json', ...options.headers } });
  } catch (err) {
    return fail(err, 'request failed');
  }

  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    if (res.status === 429) {
      throw new SourceError(source, 'rate_limited', 'rate limited (HTTP 429)', retryAfterMs, 429);
    }
    throw new SourceError(source, 'http_status', `HTTP ${res.status}`, retryAfterMs, res.status);
  }

  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > options.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(source, options.maxBytes);
  }

  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > options.maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge(source, options.maxBytes);
        }
        chunks.push(value);
      }
    } catch (err) {
      if (err instanceof SourceError) throw err;
      return fail(err, 'reading the body failed');
    }
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, size));
  } catch {
    throw new SourceError(source, 'bad_json', 'the body is not UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SourceError(source, 'bad_json', `the body is not JSON: ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/**
 * Retry-After as milliseconds from now: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; capped at MAX_RETRY_AFTER_MS.
 */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - nowMs);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

function tooLarge(source: SourceName, maxBytes: number): SourceError {
  return new SourceError(source, 'too_large', `the body is larger than ${maxBytes} bytes`);
}

function describe(err: unknown): string {
  // Duck-typed: errors thrown by the runtime's fetch may come from another realm (Jest's vm).
  const message = (e: unknown): string | undefined =>
    typeof e === 'object' && e !== null && 'message' in e && typeof e.message === 'string' ? e.message : undefined;
  // undici puts the socket-level reason (ECONNREFUSED, ...) in `cause`.
  const cause = typeof err === 'object' && err !== null && 'cause' in err ? message(err.cause) : undefined;
  return `${message(err) ?? String(err)}${cause ? `: ${cause}` : ''}`;
}
