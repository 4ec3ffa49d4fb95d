import { ApiError } from '../http/api-error';
import { parseDelta, parseHandshakeAuth, parseStreamQuery, parseSubscribe, parseUnsubscribe } from './subscribe-request';

const limits = { pairs: new Set(['BTC-USD', 'ETH-USD']), maxPairs: 3 };
const NOW = Date.parse('2026-11-21T21:00:00Z');

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err.code;
    throw err;
  }
  throw new Error('did not throw');
}

describe(parseSubscribe.name, () => {
  it('normalises pairs given as an array or a comma-separated string', () => {
    expect(parseSubscribe({ pairs: ['btc/usd', 'ETH-USD', 'BTC-USD'] }, limits, NOW)).toEqual({ pairs: ['BTC-USD', 'ETH-USD'], resume: undefined });
    expect(parseSubscribe({ pairs: 'eth-usd' }, limits, NOW).pairs).toEqual(['ETH-USD']);
  });

  it('takes every configured pair when pairs is absent or null', () => {
    expect(parseSubscribe({}, limits, NOW).pairs).toEqual(['BTC-USD', 'ETH-USD']);
    expect(parseSubscribe({ pairs: null }, limits, NOW).pairs).toEqual(['BTC-USD', 'ETH-USD']);
  });

  it('prefers lastEventId over since', () => {
    const cmd = parseSubscribe({ pairs: ['BTC-USD'], lastEventId: '1763758800000-2', since: 1763758700 }, limits, NOW);
    expect(cmd.resume).toEqual({ kind: 'id', id: { ms: 1763758800000, seq: 2 }});
    expect(parseSubscribe({ since: 1763758700 }, limits, NOW).resume).toEqual({ kind: 'time', ms: 1763758700000 });
  });

  it.each([
    ['a string', 'BTC-USD', 'INVALID_PAYLOAD'],
    ['an array', ['BTC-USD'], 'INVALID_PAYLOAD'],
    ['null', null, 'INVALID_PAYLOAD'],
    ['a class instance', new Date(), 'INVALID_PAYLOAD'],
    ['an unknown field', { pairs: ['BTC-USD'], foo: 1 }, 'INVALID_PAYLOAD'],
    ['a __proto__ key', JSON.parse('{"__proto__":{"x":1}}') as unknown, 'INVALID_PAYLOAD'],
    ['a constructor key', { constructor: 1 }, 'INVALID_PAYLOAD'],
    ['pairs of the wrong type', { pairs: 1 }, 'INVALID_PAYLOAD'],
    ['a non-string pair', { pairs: ['BTC-USD', 1] }, 'INVALID_PAYLOAD'],
    ['too many pairs', { pairs: ['BTC-USD', 'BTC-USD', 'BTC-USD', 'BTC-USD'] }, 'TOO_MANY_PAIRS'],
    ['too many pairs hidden in commas', { pairs: ['BTC-USD,ETH-USD', 'BTC-USD,ETH-USD'] }, 'TOO_MANY_PAIRS'],
    ['no pair', { pairs: [] }, 'INVALID_PAIR'],
    ['a blank pair string', { pairs: ' ' }, 'INVALID_PAIR'],
    ['a malformed pair', { pairs: ['B'.repeat(300)] }, 'INVALID_PAIR'],
    ['an unknown pair', { pairs: ['DOGE-USD'] }, 'UNSUPPORTED_PAIR'],
    ['an over-long pairs string', { pairs: 'B'.repeat(5000) }, 'INVALID_PAYLOAD'],
    ['a lastEventId of the wrong type', { lastEventId: 5 }, 'INVALID_PAYLOAD'],
    ['a since of the wrong type', { since: true }, 'INVALID_PAYLOAD'],
    ['a malformed lastEventId', { lastEventId: 'x-1' }, 'INVALID_RESUME_POINT'],
    ['an over-long lastEventId', { lastEventId: '1'.repeat(100) }, 'INVALID_RESUME_POINT'],
    ['a malformed since', { since: 'yesterday' }, 'INVALID_RESUME_POINT'],
    ['a since in the future', { since: NOW + 3_600_000 }, 'RESUME_POINT_IN_FUTURE'],
    ['a lastEventId in the future', { lastEventId: `${NOW + 3_600_000}-0` }, 'RESUME_POINT_IN_FUTURE'],
  ])('refuses %s', (_what, payload, code) => {
    expect(codeOf(() => parseSubscribe(payload, limits, NOW))).toBe(code);
  });
});

describe(parseUnsubscribe.name, () => {
  it('returns the named pairs, or all of them when none is named', () => {
    expect(parseUnsubscribe({ pairs: ['btc-usd'] }, limits)).toEqual(['BTC-USD']);
    expect(parseUnsubscribe({}, limits)).toEqual(['BTC-USD', 'ETH-USD']);
  });

  it('refuses fields other than pairs', () => {
    expect(codeOf(() => parseUnsubscribe({ pairs: ['BTC-USD'], lastEventId: '1-1' }, limits))).toBe('INVALID_PAYLOAD');
  });
});

describe(parseHandshakeAuth.name, () => {
  it('asks for no subscription when auth names neither pairs nor a resume point', () => {
    expect(parseHandshakeAuth(undefined, limits, NOW)).toBeNull();
    expect(parseHandshakeAuth({ token: 'abc' }, limits, NOW)).toBeNull();
  });

  it('subscribes all pairs when auth only carries a lastEventId', () => {
    expect(parseHandshakeAuth({ lastEventId: '1763758800000-0', token: 'abc' }, limits, NOW)).toEqual({
      pairs: ['BTC-USD', 'ETH-USD'],
      resume: { kind: 'id', id: { ms: 1763758800000, seq: 0 } },
    });
  });

  it('refuses poisoned keys and bad values', () => {
    expect(codeOf(() => parseHandshakeAuth(JSON.parse('{"__proto__":{}}') as unknown, limits, NOW))).toBe('INVALID_PAYLOAD');
    expect(codeOf(() => parseHandshakeAuth({ pairs: ['XRP-USD'] }, limits, NOW))).toBe('UNSUPPORTED_PAIR');
  });
});

describe(parseDelta.name, () => {
  it('takes 1/true for deltas, 0/false for full ticks, and nothing as not asked, from a query or a JSON field', () => {
    for (const on of [true, 1, '1', 'true']) expect(parseDelta(on)).toBe(true);
    for (const off of [false, 0, '0', 'false']) expect(parseDelta(off)).toBe(false);
    for (const none of [undefined, null, '']) expect(parseDelta(none)).toBeUndefined();
    expect(parseStreamQuery({ pairs: 'BTC-USD', delta: '1' }, limits, NOW).delta).toBe(true);
    expect(parseSubscribe({ pairs: ['BTC-USD'], delta: true }, limits, NOW).delta).toBe(true);
    expect(parseHandshakeAuth({ delta: 1 }, limits, NOW)).toMatchObject({ pairs: ['BTC-USD', 'ETH-USD'], delta: true });
  });

  it.each([['yes'], [2], [{}], [['1']]])('refuses delta=%j with INVALID_DELTA', (value) => {
    expect(codeOf(() => parseDelta(value))).toBe('INVALID_DELTA');
    expect(codeOf(() => parseSubscribe({ delta: value }, limits, NOW))).toBe('INVALID_DELTA');
  });
});
