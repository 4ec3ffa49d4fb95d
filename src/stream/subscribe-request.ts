import { ApiError } from '../http/api-error';
import { MAX_QUERY_VALUE_LENGTH, requirePairList } from '../http/query';
import { resolveResumePoint, type ResumePoint } from '../domain/resume';
import type { TickId } from '../domain/tick-id';
import { CONFLATE_MAX_MS, CONFLATE_MIN_MS } from '../shared/wire';

/**
 * What a subscriber asks for, validated, whatever the transport: pairs, where to resume, and
 * the conflation interval (`undefined`: not asked, keep what the connection has; 0: every tick).
 */
export type SubscribeCommand = { pairs: string[]; resume: ResumePoint | undefined; conflateMs: number | undefined; delta?: boolean };

/** `newestId`: the newest tick id this instance knows (null: none yet); a resume id after it is refused. */
export type RequestLimits = { pairs: ReadonlySet<string>; maxPairs: number; newestId?: () => TickId | null };

/** Keys that would reach an object's prototype if anything ever merged a payload. */
const POISONED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_RESUME_LENGTH = 64;
const SUBSCRIBE_FIELDS = ['pairs', 'lastEventId', 'since', 'conflate', 'delta'] as const;

const invalid = (message: string) => new ApiError(400, 'INVALID_PAYLOAD', message);

/**
 * `conflate`: milliseconds, CONFLATE_MIN_MS..CONFLATE_MAX_MS, or 0 for every tick. A string (a
 * query parameter) or a number (a JSON field). Absent or empty: undefined.
 */
export function parseConflate(raw: unknown): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : undefined;
  const ms = text !== undefined && /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (ms === 0) return 0;
  if (!(ms >= CONFLATE_MIN_MS && ms <= CONFLATE_MAX_MS)) {
    throw new ApiError(400, 'INVALID_CONFLATE', `conflate must be 0 or whole milliseconds from ${CONFLATE_MIN_MS} to ${CONFLATE_MAX_MS}`);
  }
  return ms;
}

/**
 * `delta` (docs/api.md "Deltas"): `1`/`true` for deltas, `0`/`false` for full ticks; a query
 * string or a JSON boolean or number. Absent, null or empty: undefined (not asked).
 */
export function parseDelta(raw: unknown): boolean | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (raw === true || raw === 1 || raw === '1' || raw === 'true') return true;
  if (raw === false || raw === 0 || raw === '0' || raw === 'false') return false;
  throw new ApiError(400, 'INVALID_DELTA', 'delta must be 1 or true (deltas), 0 or false (full ticks)');
}

/** A stream request from a URL (SSE, the WebSocket query): every value a plain string already checked by `searchParam`. */
export type StreamQuery = { pairs?: string; header?: string; lastEventId?: string; since?: string; conflate?: string; delta?: string };

/** SSE and the WebSocket upgrade: no `pairs` means every configured pair (or `defaultPair`, the legacy routes'). */
export function parseStreamQuery(query: StreamQuery, limits: RequestLimits, nowMs: number, defaultPair?: string): SubscribeCommand {
  let pairs: string[];
  if ((query.pairs === undefined || query.pairs.trim() === '') && defaultPair !== undefined) {
    if (!limits.pairs.has(defaultPair)) throw new ApiError(404, 'UNSUPPORTED_PAIR', `${defaultPair} is not served here`);
    pairs = [defaultPair];
  } else {
    pairs = requirePairList(query.pairs, limits.pairs, limits.maxPairs);
  }
  const resume = resolveResumePoint({ header: query.header, lastEventId: query.lastEventId, since: query.since }, nowMs, limits.newestId?.() ?? null);
  return { pairs, resume, conflateMs: parseConflate(query.conflate), delta: parseDelta(query.delta) };
}

/**
 * The payload as a plain object whose keys are all `known` (unless `ignoreUnknown`). JSON
 * decoding makes `__proto__` an own key: it is refused, never merged.
 */
function plainObject(payload: unknown, what: string, known: readonly string[], ignoreUnknown = false): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw invalid(`${what} must be an object`);
  }
  const proto: unknown = Object.getPrototypeOf(payload);
  if (proto !== Object.prototype && proto !== null) throw invalid(`${what} must be a plain object`);
  for (const key of Object.keys(payload)) {
    if (POISONED_KEYS.has(key)) throw invalid(`${what} has a forbidden key "${key}"`);
    if (!ignoreUnknown && !known.includes(key)) throw invalid(`${what} has an unknown field "${key.slice(0, 32)}"; known: ${known.join(', ')}`);
  }
  return payload as Record<string, unknown>;
}

/** `pairs` as an array of strings or one comma-separated string; absent means every configured pair. */
function parsePairs(value: unknown, limits: RequestLimits): string[] {
  if (value === undefined || value === null) return [...limits.pairs];
  if (typeof value === 'string') {
    if (value.length > MAX_QUERY_VALUE_LENGTH) throw invalid(`pairs is longer than ${MAX_QUERY_VALUE_LENGTH} characters`);
    if (value.trim() === '') throw new ApiError(400, 'INVALID_PAIR', 'no pair given');
    return requirePairList(value, limits.pairs, limits.maxPairs);
  }
  if (!Array.isArray(value)) throw invalid('pairs must be an array of strings or a comma-separated string');
  if (value.length > limits.maxPairs) throw new ApiError(400, 'TOO_MANY_PAIRS', `at most ${limits.maxPairs} pairs per request, got ${value.length}`);
  if (!value.every((p): p is string => typeof p === 'string')) throw invalid('pairs must be an array of strings');
  if (value.length === 0) throw new ApiError(400, 'INVALID_PAIR', 'no pair given');
  // An item with a comma counts as several pairs: requirePairList checks the count again.
  return requirePairList(value.map((p) => p.slice(0, MAX_QUERY_VALUE_LENGTH)).join(','), limits.pairs, limits.maxPairs);
}

function parseResume(fields: Record<string, unknown>, what: string, nowMs: number, limits: RequestLimits): ResumePoint | undefined {
  const { lastEventId, since } = fields;
  if (lastEventId !== undefined && lastEventId !== null && typeof lastEventId !== 'string') throw invalid(`${what}.lastEventId must be a string`);
  if (since !== undefined && since !== null && typeof since !== 'string' && typeof since !== 'number') {
    throw invalid(`${what}.since must be a string or a number`);
  }
  for (const [name, v] of [['lastEventId', lastEventId], ['since', since]] as const) {
    if (typeof v === 'string' && v.length > MAX_RESUME_LENGTH) {
      throw new ApiError(400, 'INVALID_RESUME_POINT', `${name} is longer than ${MAX_RESUME_LENGTH} characters`);
    }
  }
  return resolveResumePoint({ lastEventId: lastEventId ?? undefined, since: since ?? undefined }, nowMs, limits.newestId?.() ?? null);
}

function parseConflateField(fields: Record<string, unknown>, what: string): number | undefined {
  const { conflate } = fields;
  if (conflate !== undefined && conflate !== null && typeof conflate !== 'number' && typeof conflate !== 'string') {
    throw new ApiError(400, 'INVALID_CONFLATE', `${what}.conflate must be a number of milliseconds`);
  }
  return parseConflate(conflate);
}

/**
 * `subscribe {pairs?, lastEventId?, since?, conflate?, delta?}` (Socket.IO event, WebSocket message:
 * `extra` names fields the envelope adds, e.g. `type`); throws an ApiError with the code.
 */
export function parseSubscribe(payload: unknown, limits: RequestLimits, nowMs: number, extra: readonly string[] = []): SubscribeCommand {
  const body = plainObject(payload, 'subscribe', [...SUBSCRIBE_FIELDS, ...extra]);
  return { pairs: parsePairs(body.pairs, limits), resume: parseResume(body, 'subscribe', nowMs, limits), conflateMs: parseConflateField(body, 'subscribe'), delta: parseDelta(body.delta) };
}

/** `unsubscribe {pairs?}`: no pairs means all of them. */
export function parseUnsubscribe(payload: unknown, limits: RequestLimits, extra: readonly string[] = []): string[] {
  const body = plainObject(payload, 'unsubscribe', ['pairs', ...extra]);
  return parsePairs(body.pairs, limits);
}

/**
 * Socket.IO handshake auth: a subscription when it names pairs, a resume point or conflation,
 * else none. Unknown keys are ignored (auth may carry things for other middleware), poisoned ones are not.
 */
export function parseHandshakeAuth(auth: unknown, limits: RequestLimits, nowMs: number): SubscribeCommand | null {
  if (auth === undefined || auth === null) return null;
  const body = plainObject(auth, 'auth', [], true);
  const asks = SUBSCRIBE_FIELDS.some((k) => body[k] !== undefined && body[k] !== null);
  if (!asks) return null;
  return { pairs: parsePairs(body.pairs, limits), resume: parseResume(body, 'auth', nowMs, limits), conflateMs: parseConflateField(body, 'auth'), delta: parseDelta(body.delta) };
}
