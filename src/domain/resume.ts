import { ApiError } from '../http/api-error';
import { clip } from './pair';
import { compareTickIds, formatTickId, parseTickId, type TickId } from './tick-id';

/** Where a subscriber wants to resume: after an event id, or from a time (inclusive, in ms). */
export type ResumePoint = { kind: 'id'; id: TickId } | { kind: 'time'; ms: number };

/** How far a client clock may run ahead before its `since` counts as "in the future" (ids get none while the server knows its newest one). */
export const CLOCK_SKEW_MS = 5_000;

/** Unix seconds below this, Unix milliseconds from it (10^11 s is the year 5138; 10^11 ms is 1973). */
const SECONDS_LIMIT = 100_000_000_000;
const ISO_PATTERN = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Parses `since`: Unix seconds, Unix milliseconds (both may have a fraction) or ISO-8601. */
export function parseSince(raw: string | number, nowMs: number): number {
  const text = String(raw).trim();
  let ms: number;
  if (/^\d{1,16}(\.\d{1,6})?$/.test(text)) {
    const n = Number(text);
    ms = Math.floor(n < SECONDS_LIMIT ? n * 1000 : n);
  } else if (ISO_PATTERN.test(text)) {
    ms = Date.parse(text);
  } else {
    ms = NaN;
  }
  if (!Number.isFinite(ms)) {
    throw new ApiError(400, 'INVALID_RESUME_POINT', `since "${clip(text)}" is not Unix seconds, Unix milliseconds or ISO-8601`);
  }
  if (ms > nowMs + CLOCK_SKEW_MS) {
    throw new ApiError(400, 'RESUME_POINT_IN_FUTURE', `since ${new Date(ms).toISOString()} is in the future`);
  }
  return ms;
}

/**
 * An event id comes from the server: one after `newest`, the newest id this instance knows to
 * have been published (equal is fine), is a 400 RESUME_POINT_IN_FUTURE; the subscriber would
 * otherwise silently miss every tick up to it. Only while the server knows no id yet (an
 * empty log) does the clock decide, with the CLOCK_SKEW_MS allowance.
 */
export function parseLastEventId(raw: string, nowMs: number, newest: TickId | null = null): TickId {
  const id = parseTickId(raw.trim());
  if (!id) {
    throw new ApiError(400, 'INVALID_RESUME_POINT', `last event id "${clip(raw)}" is not of the form <milliseconds>-<sequence>`);
  }
  if (newest !== null ? compareTickIds(id, newest) > 0 : id.ms > nowMs + CLOCK_SKEW_MS) {
    const latest = newest === null ? '' : `; the latest is ${formatTickId(newest)}`;
    throw new ApiError(400, 'RESUME_POINT_IN_FUTURE', `last event id ${clip(raw)} was never published${latest}`);
  }
  return id;
}

/**
 * Picks the resume point from what a request carries, in the contract's order of precedence:
 * the `Last-Event-ID` header, then the `lastEventId` parameter, then `since`. Empty values count as absent.
 */
export function resolveResumePoint(
  input: { header?: string; lastEventId?: string; since?: string | number },
  nowMs: number,
  newest: TickId | null = null,
): ResumePoint | undefined {
  const id = [input.header, input.lastEventId].find((v) => v !== undefined && v.trim() !== '');
  if (id !== undefined) return { kind: 'id', id: parseLastEventId(id, nowMs, newest) };
  if (input.since !== undefined && String(input.since).trim() !== '') {
    return { kind: 'time', ms: parseSince(input.since, nowMs) };
  }
  return undefined;
}
