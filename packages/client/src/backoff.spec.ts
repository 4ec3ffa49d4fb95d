import { backoffDelay, DEFAULT_BACKOFF, firstRetryDelay, type BackoffPolicy } from './backoff';

describe('backoffDelay', () => {
  const full: BackoffPolicy = { baseMs: 1000, maxMs: 8000, jitter: 'full' };
  const equal: BackoffPolicy = { ...full, jitter: 'equal' };

  it('doubles the cap on each attempt until maxMs when random is at its top', () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, full, top))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('spreads over [0, cap] with full jitter', () => {
    expect(backoffDelay(3, full, () => 0)).toBe(0);
    expect(backoffDelay(3, full, () => 0.5)).toBe(2000);
  });

  it('spreads over [cap/2, cap] with equal jitter so it never retries at once', () => {
    expect(backoffDelay(3, equal, () => 0)).toBe(2000);
    expect(backoffDelay(3, equal, () => 0.5)).toBe(3000);
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0)).toBe(250);
  });

  it('stays finite and capped when the attempt count is huge', () => {
    expect(backoffDelay(10_000, equal, () => 1)).toBe(8000);
  });

  it('treats attempts below 1 as the first retry', () => {
    expect(backoffDelay(0, full, () => 0.999999)).toBe(1000);
  });
});

describe('firstRetryDelay', () => {
  const equal: BackoffPolicy = { baseMs: 1000, maxMs: 8000, jitter: 'equal' };

  it("takes the server's hint, capped at maxMs", () => {
    expect(firstRetryDelay(equal, 734, () => 0.5)).toBe(734);
    expect(firstRetryDelay(equal, 0, () => 0.5)).toBe(0);
    expect(firstRetryDelay(equal, 60_000, () => 0.5)).toBe(8000);
  });

  it('without a (usable) hint, anywhere in [0, baseMs]', () => {
    for (const hint of [undefined, -1, Number.NaN, Infinity]) {
      expect(firstRetryDelay(equal, hint, () => 0)).toBe(0);
      expect(firstRetryDelay(equal, hint, () => 0.25)).toBe(250);
      expect(firstRetryDelay(equal, hint, () => 0.999999)).toBe(1000);
    }
  });
});
