import type { ErrorCode, Transport } from '../../../src/shared/wire';

/** Codes the library itself gives, for what no server said: the platform lacks something. */
export type ClientErrorCode = 'NO_FETCH' | 'NO_WEBSOCKET' | 'SOCKET_IO_CLIENT_MISSING';

/** What a server (or the library) said when it refused a stream. */
export type Refusal = {
  /** The service's stable code (docs/api.md), a library code, or null when none was said. */
  code: ErrorCode | ClientErrorCode | (string & {}) | null;
  /** The HTTP status when the transport shows it (SSE always; WebSocket and Socket.IO rarely). */
  status: number | null;
  message: string;
};

/**
 * Codes that are worth another attempt whatever their status: limits and shutdowns pass, and an
 * instance that has not yet seen the newest id refuses it while another one has it (see
 * docs/api.md, "resume points").
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'RATE_LIMITED',
  'TOO_MANY_CONNECTIONS',
  'SHUTTING_DOWN',
  'RESUME_POINT_IN_FUTURE',
  'INTERNAL_ERROR',
  // The stream's token expired: the next attempt asks getToken() for a new one.
  'TOKEN_EXPIRED',
  'AUTH_UNAVAILABLE',
]);

/**
 * Refused for good: the same request would be refused on every attempt. A 4xx but 408 and 429
 * (or, where the transport shows no status, a code the service gives only with such a status),
 * and what the library itself cannot do on this platform. 5xx, 408, 429 and network errors are
 * retried with backoff.
 */
export function isPermanent(refusal: Refusal): boolean {
  const { code, status } = refusal;
  if (code !== null && TRANSIENT_CODES.has(code)) return false;
  if (status !== null) return status >= 400 && status < 500 && status !== 408 && status !== 429;
  return code !== null && PERMANENT_CODES.has(code);
}

/** The service's codes that come with a 4xx other than 408/429, and the library's own. */
const PERMANENT_CODES: ReadonlySet<string> = new Set<ErrorCode | ClientErrorCode>([
  'INVALID_PAIR',
  'UNSUPPORTED_PAIR',
  'TOO_MANY_PAIRS',
  'INVALID_QUERY',
  'INVALID_RESUME_POINT',
  'INVALID_PAYLOAD',
  'INVALID_CONFLATE',
  'INVALID_DELTA',
  'INVALID_NAMESPACE',
  'URI_TOO_LONG',
  'UNAUTHORIZED',
  'PAIR_NOT_ENTITLED',
  'FORBIDDEN_ORIGIN',
  'NO_FETCH',
  'NO_WEBSOCKET',
  'SOCKET_IO_CLIENT_MISSING',
]);

/** The `error` event's value: a permanent refusal. The client has stopped; `use()` tries again. */
export class PriceStreamError extends Error {
  override readonly name = 'PriceStreamError';
  readonly code: Refusal['code'];
  readonly status: number | null;
  readonly transport: Transport;

  constructor(refusal: Refusal, transport: Transport) {
    super(refusal.message);
    this.code = refusal.code;
    this.status = refusal.status;
    this.transport = transport;
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{code, message}` of an error body (`{statusCode, code, message}`) or of Socket.IO's connect_error data. */
export function errorFields(v: unknown): { code: string; message: string } | null {
  if (!isObject(v) || typeof v.code !== 'string' || v.code === '') return null;
  return { code: v.code, message: typeof v.message === 'string' ? v.message : v.code };
}

/** The refusal an HTTP answer that is not a stream carries: its status and, when JSON, its code. */
export async function refusalOf(res: Response): Promise<Refusal> {
  let body: unknown;
  try {
    body = JSON.parse(await res.text()) as unknown;
  } catch {
    body = undefined;
  }
  const fields = errorFields(body);
  return { status: res.status, code: fields?.code ?? null, message: fields?.message ?? `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}` };
}
