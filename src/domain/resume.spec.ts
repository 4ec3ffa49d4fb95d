import { ApiError } from '../http/api-error';
import { parseSince, resolveResumePoint } from './resume';
import { idAfter, newerId, parseTickId } from './tick-id';

const NOW = Date.parse('2026-11-21T21:00:00.000Z');

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e instanceof ApiError ? e.code : 'not an ApiError';
  }
};

describe('resume points', () => {
  it('reads since as Unix seconds, Unix milliseconds or ISO-8601', () => {
    expect(parseSince('1763758800', NOW)).toBe(1763758800000);
    expect(parseSince('1763758800123', NOW)).toBe(1763758800123);
    expect(parseSince(1763758800.5, NOW)).toBe(1763758800500);
    expect(parseSince('2026-11-21T20:00:00Z', NOW)).toBe(Date.parse('2026-11-21T20:00:00Z'));
  });

  it('rejects a malformed since with INVALID_RESUME_POINT and a future one with RESUME_POINT_IN_FUTURE', () => {
    expect(codeOf(() => parseSince('yesterday', NOW))).toBe('INVALID_RESUME_POINT');
    expect(codeOf(() => parseSince('-5', NOW))).toBe('INVALID_RESUME_POINT');
    expect(codeOf(() => parseSince('2026-13-45T99:00:00Z', NOW))).toBe('INVALID_RESUME_POINT');
    expect(codeOf(() => parseSince(String(NOW + 60_000), NOW))).toBe('RESUME_POINT_IN_FUTURE');
  });

  it('prefers the Last-Event-ID header, then lastEventId, then since', () => {
    expect(resolveResumePoint({ header: '5-1', lastEventId: '4-0', since: '1' }, NOW)).toEqual({ kind: 'id', id: { ms: 5, seq: 1 } });
    expect(resolveResumePoint({ header: ' ', lastEventId: '4-0', since: '1' }, NOW)).toEqual({ kind: 'id', id: { ms: 4, seq: 0 } });
    expect(resolveResumePoint({ since: '1763758800' }, NOW)).toEqual({ kind: 'time', ms: 1763758800000 });
    expect(resolveResumePoint({}, NOW)).toBeUndefined();
  });

  it('rejects malformed and future event ids', () => {
    expect(codeOf(() => resolveResumePoint({ lastEventId: 'abc' }, NOW))).toBe('INVALID_RESUME_POINT');
    expect(codeOf(() => resolveResumePoint({ lastEventId: '1-2-3' }, NOW))).toBe('INVALID_RESUME_POINT');
    expect(codeOf(() => resolveResumePoint({ lastEventId: `${NOW + 3_600_000}-0` }, NOW))).toBe('RESUME_POINT_IN_FUTURE');
  });

  it('refuses an id after the newest known one, without a clock allowance, and accepts the newest itself', () => {
    const newest = { ms: NOW - 10_000, seq: 3 };
    expect(codeOf(() => resolveResumePoint({ lastEventId: `${NOW - 10_000}-4` }, NOW, newest))).toBe('RESUME_POINT_IN_FUTURE');
    expect(codeOf(() => resolveResumePoint({ lastEventId: `${NOW}-0` }, NOW, newest))).toBe('RESUME_POINT_IN_FUTURE');
    expect(resolveResumePoint({ lastEventId: `${NOW - 10_000}-3` }, NOW, newest)).toEqual({ kind: 'id', id: newest });
    // Redis' clock may run ahead of this one: the newest id decides, not the local time.
    expect(resolveResumePoint({ lastEventId: `${NOW + 2_000}-0` }, NOW, { ms: NOW + 2_000, seq: 0 })).toEqual({ kind: 'id', id: { ms: NOW + 2_000, seq: 0 } });
    expect(resolveResumePoint({ since: String(NOW + 2_000) }, NOW, newest)).toEqual({ kind: 'time', ms: NOW + 2_000 });
  });
});

describe('tick ids', () => {
  it('compares ids numerically, millisecond first, then sequence', () => {
    expect(idAfter('10-0', '9-5')).toBe(true);
    expect(idAfter('10-10', '10-9')).toBe(true);
    expect(idAfter('10-9', '10-10')).toBe(false);
    expect(idAfter('10-1', '10-1')).toBe(false);
    expect(idAfter('1763758800123-0', '999999999999-99')).toBe(true);
  });

  it('takes the later of two ids, either of which may be missing', () => {
    expect(newerId('10-10', '10-9')).toBe('10-10');
    expect(newerId('9-5', '10-0')).toBe('10-0');
    expect(newerId(null, '10-0')).toBe('10-0');
    expect(newerId('10-0', null)).toBe('10-0');
    expect(newerId(null, null)).toBeNull();
  });

  it('parses only <ms>-<seq>', () => {
    expect(parseTickId('1763758800123-7')).toEqual({ ms: 1763758800123, seq: 7 });
    expect(parseTickId('1763758800123')).toBeNull();
    expect(parseTickId('x-1')).toBeNull();
  });
});
