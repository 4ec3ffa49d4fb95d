import { checkQuote, JumpGuard, median, pctApart } from './price-checks';

const NOW = Date.parse('2026-11-21T21:00:00.000Z');

describe('checkQuote', () => {
  it.each([[1e308], [1e-300], [Infinity], [NaN], [0], [-1]])('rejects %p as implausible', (price) => {
    expect(checkQuote('kraken', { pair: 'BTC-USD', price }, NOW, 30_000)?.kind).toBe('implausible');
  });

  it('accepts a price in range with no upstream time, or one within STALE_AFTER_MS', () => {
    expect(checkQuote('kraken', { pair: 'BTC-USD', price: 97000 }, NOW, 30_000)).toBeNull();
    expect(checkQuote('coingecko', { pair: 'SHIB-BTC', price: 1.5e-10, sourceTimestamp: new Date(NOW - 30_000).toISOString() }, NOW, 30_000)).toBeNull();
  });

  it('rejects as stale a price whose upstream time is older than STALE_AFTER_MS or unreadable', () => {
    const old = checkQuote('coingecko', { pair: 'BTC-USD', price: 97000, sourceTimestamp: new Date(NOW - 2 * 3_600_000).toISOString() }, NOW, 30_000);
    expect(old).toMatchObject({ kind: 'stale', message: expect.stringContaining('7200 s ago') });
    expect(checkQuote('coingecko', { pair: 'BTC-USD', price: 97000, sourceTimestamp: 'yesterday' }, NOW, 30_000)?.kind).toBe('stale');
  });

  it('rejects a price whose upstream time is ahead of ours by more than the clock skew, and allows a small lead', () => {
    const ahead = checkQuote('kraken', { pair: 'BTC-USD', price: 97000, sourceTimestamp: new Date(NOW + 3_600_000).toISOString() }, NOW, 30_000);
    expect(ahead).toMatchObject({ kind: 'implausible', message: expect.stringContaining('3600 s in the future') });
    expect(checkQuote('kraken', { pair: 'BTC-USD', price: 97000, sourceTimestamp: new Date(NOW + 2000).toISOString() }, NOW, 30_000)).toBeNull();
  });
});

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(pctApart(90, 100)).toBe(10);
  });
});

describe(JumpGuard.name, () => {
  it('sees a jump only beyond MAX_JUMP_PCT of a reference', () => {
    const guard = new JumpGuard(10, 3);
    expect(guard.isJump(110, 100)).toBe(false);
    expect(guard.isJump(111, 100)).toBe(true);
    expect(guard.isJump(50, 100)).toBe(true);
    expect(guard.isJump(50, undefined)).toBe(false);
  });

  it('accepts a jump that persists for JUMP_CONFIRMATIONS answers in a row', () => {
    const guard = new JumpGuard(10, 3);
    expect(guard.hold('BTC-USD', 50)).toEqual({ count: 1, accepted: false });
    expect(guard.hold('BTC-USD', 51)).toEqual({ count: 2, accepted: false });
    expect(guard.hold('BTC-USD', 50.5)).toEqual({ count: 3, accepted: true });
    expect(guard.hold('BTC-USD', 50.5)).toEqual({ count: 1, accepted: false });
  });

  it('starts over when the held level moves or the streak is cleared', () => {
    const guard = new JumpGuard(10, 3);
    guard.hold('BTC-USD', 50);
    guard.hold('BTC-USD', 50);
    expect(guard.hold('BTC-USD', 200)).toEqual({ count: 1, accepted: false });
    guard.clear('BTC-USD');
    expect(guard.hold('BTC-USD', 200)).toEqual({ count: 1, accepted: false });
    expect(guard.hold('ETH-USD', 1)).toEqual({ count: 1, accepted: false });
  });
});
