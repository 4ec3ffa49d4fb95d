import { ApiError } from './api-error';
import { clip } from './pair';
import { parseTickId, type TickId } from './tick-id';

/** Where a subscriber wants to resume: after an event id, or from a time (inclusive, in ms). */
export type ResumePoint = { kind: 'id'; id: TickId } | { kind: 'time'; ms: number };

/** How far a client clock may run ahead before its `since` counts as "in the future". */
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

export function parseLastEventId(raw: string, nowMs: number): TickId {
  const id = parseTickId(raw.trim());
  if (!id) {
    throw new ApiError(400, 'INVALID_RESUME_POINT', `last event id "${clip(raw)}" is not of the form <milliseconds>-<sequence>`);
  }
  if (id.ms > nowMs + CLOCK_SKEW_MS) {
    throw new ApiError(400, 'RESUME_POINT_IN_FUTURE', `last event id ${clip(raw)} is from the future`);
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
): ResumePoint | undefined {
  const id = [input.header, input.lastEventId].find((v) => v !== undefined && v.trim() !== '');
  if (id !== undefined) return { kind: 'id', id: parseLastEventId(id, nowMs) };
  if (input.since !== undefined && String(input.since).trim() !== '') {
    return { kind: 'time', ms: parseSince(input.since, nowMs) };
  }
  return undefined;
}
