import { ApiError } from '../common/api-error';
import { MAX_QUERY_VALUE_LENGTH, requirePairList } from '../common/query';
import { resolveResumePoint, type ResumePoint } from '../common/resume';

/** A validated `subscribe` request, or handshake auth that asks for a subscription. */
export type SubscribeCommand = { pairs: string[]; resume: ResumePoint | undefined };

export type PayloadLimits = { pairs: ReadonlySet<string>; maxPairs: number };

/** Keys that would reach an object's prototype if anything ever merged a payload. */
const POISONED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_RESUME_LENGTH = 64;

const invalid = (message: string) => new ApiError(400, 'INVALID_PAYLOAD', message);

/**
 * The payload as a plain object whose keys are all `known` (unless `ignoreUnknown`). Socket.IO
 * decodes JSON, so `__proto__` arrives as an own key: it is refused, never merged.
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
function parsePairs(value: unknown, limits: PayloadLimits): string[] {
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

function parseResume(fields: Record<string, unknown>, what: string, nowMs: number): ResumePoint | undefined {
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
  return resolveResumePoint({ lastEventId: lastEventId ?? undefined, since: since ?? undefined }, nowMs);
}

/** `subscribe {pairs?, lastEventId?, since?}`; throws an ApiError with the code for the error ack. */
export function parseSubscribe(payload: unknown, limits: PayloadLimits, nowMs: number): SubscribeCommand {
  const body = plainObject(payload, 'subscribe', ['pairs', 'lastEventId', 'since']);
  return { pairs: parsePairs(body.pairs, limits), resume: parseResume(body, 'subscribe', nowMs) };
}

/** `unsubscribe {pairs?}`: no pairs means all of them. */
export function parseUnsubscribe(payload: unknown, limits: PayloadLimits): string[] {
  const body = plainObject(payload, 'unsubscribe', ['pairs']);
  return parsePairs(body.pairs, limits);
}

/**
 * Handshake auth: a subscription when it names pairs or a resume point, else none. Unknown keys
 * are ignored (auth may carry things for other middleware), poisoned ones are not.
 */
export function parseHandshakeAuth(auth: unknown, limits: PayloadLimits, nowMs: number): SubscribeCommand | null {
  if (auth === undefined || auth === null) return null;
  const body = plainObject(auth, 'auth', [], true);
  const asks = ['pairs', 'lastEventId', 'since'].some((k) => body[k] !== undefined && body[k] !== null);
  if (!asks) return null;
  return { pairs: parsePairs(body.pairs, limits), resume: parseResume(body, 'auth', nowMs) };
}
