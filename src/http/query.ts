import { ApiError } from './api-error';
import { checkPair, type PairCheck } from '../domain/pair';
import { MAX_URL_LENGTH } from './limits';

export const MAX_QUERY_VALUE_LENGTH = 1024;

/** Throws 414 URI_TOO_LONG for a request target longer than MAX_URL_LENGTH. */
export function checkTargetLength(target: string): void {
  if (target.length > MAX_URL_LENGTH) throw new ApiError(414, 'URI_TOO_LONG', `request target longer than ${MAX_URL_LENGTH} characters`);
}

/** One query parameter of a URL (repeats joined), checked like Express' query by queryString. */
export function searchParam(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  return queryString(values.length === 0 ? undefined : values, name);
}

/**
 * Reads one query parameter that must be a single string: Express hands arrays for repeated
 * parameters, which are joined with commas; anything else is INVALID_QUERY.
 */
export function queryString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  const parts = Array.isArray(value) ? value : [value];
  if (!parts.every((p): p is string => typeof p === 'string')) {
    throw new ApiError(400, 'INVALID_QUERY', `${name} must be a plain string`);
  }
  const joined = parts.join(',');
  if (joined.length > MAX_QUERY_VALUE_LENGTH) {
    throw new ApiError(400, 'INVALID_QUERY', `${name} is longer than ${MAX_QUERY_VALUE_LENGTH} characters`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\ufffd]/.test(joined)) {
    throw new ApiError(400, 'INVALID_QUERY', `${name} contains control characters or bad encoding`);
  }
  return joined;
}

export type PairListResult = { pairs: string[]; rejected: Extract<PairCheck, { ok: false }>[] };

/**
 * Parses a comma-separated pair list. No list (or an empty one) means every configured pair.
 * Malformed and unknown pairs are returned in `rejected` so that a caller can answer 206;
 * more than `maxPairs` entries is a 400 TOO_MANY_PAIRS.
 */
export function parsePairList(raw: string | undefined, configured: ReadonlySet<string>, maxPairs: number): PairListResult {
  if (raw === undefined || raw.trim() === '') return { pairs: [...configured], rejected: [] };
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length > maxPairs) {
    throw new ApiError(400, 'TOO_MANY_PAIRS', `at most ${maxPairs} pairs per request, got ${items.length}`);
  }
  const pairs: string[] = [];
  const rejected: PairListResult['rejected'] = [];
  for (const item of items) {
    const check = checkPair(item, configured);
    if (!check.ok) rejected.push(check);
    else if (!pairs.includes(check.pair)) pairs.push(check.pair);
  }
  return { pairs, rejected };
}

/** For streams: every pair must be valid, else the first problem is thrown. */
export function requirePairList(raw: string | undefined, configured: ReadonlySet<string>, maxPairs: number): string[] {
  const { pairs, rejected } = parsePairList(raw, configured, maxPairs);
  if (rejected.length > 0) throw rejected[0].error;
  if (pairs.length === 0) throw new ApiError(400, 'INVALID_PAIR', 'no pair given');
  return pairs;
}

/** A positive integer parameter with a default and a maximum. */
export function parseLimit(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new ApiError(400, 'INVALID_LIMIT', `limit must be an integer from 1 to ${max}`);
  }
  return Number(raw);
}
