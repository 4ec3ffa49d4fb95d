import { MIN_REFRESH_MS, refreshDelay } from './token';

describe('refreshDelay', () => {
  const now = 1_765_000_000_000;

  it('refreshes 30 s before a long token expires, and halfway through a shorter one', () => {
    expect(refreshDelay(now + 3_600_000, now)).toBe(3_570_000);
    expect(refreshDelay(now + 10_000, now)).toBe(5_000);
  });

  it('never sooner than MIN_REFRESH_MS: a token whose whole second is nearly over, or already past, is not refreshed in a tight loop', () => {
    expect(MIN_REFRESH_MS).toBe(1000);
    expect(refreshDelay(now + 300, now)).toBe(1000);
    expect(refreshDelay(now + 2, now)).toBe(1000);
    expect(refreshDelay(now - 5, now)).toBe(1000);
  });
});
