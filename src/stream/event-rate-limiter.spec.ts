import { EventRateLimiter } from './event-rate-limiter';

describe(EventRateLimiter.name, () => {
  it('passes events up to the budget within one second', () => {
    const limiter = new EventRateLimiter(3);
    expect([0, 10, 20].map((t) => limiter.hit(t))).toEqual(['ok', 'ok', 'ok']);
  });

  it('refuses events past the budget and asks for a disconnect past twice the budget', () => {
    const limiter = new EventRateLimiter(2);
    expect([0, 1, 2, 3, 4].map((t) => limiter.hit(t))).toEqual(['ok', 'ok', 'limited', 'limited', 'disconnect']);
  });

  it('starts a new budget when a second has passed', () => {
    const limiter = new EventRateLimiter(1);
    expect(limiter.hit(0)).toBe('ok');
    expect(limiter.hit(999)).toBe('limited');
    expect(limiter.hit(1000)).toBe('ok');
  });
});
