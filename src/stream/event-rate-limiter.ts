export type RateVerdict = 'ok' | 'limited' | 'disconnect';

/**
 * Counts one socket's events in one-second windows. Up to `perSecond` events pass; past that
 * they are refused (the client gets RATE_LIMITED acks); a client that keeps going past twice
 * the budget in the same second is taken to ignore the refusals and is disconnected.
 */
export class EventRateLimiter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(private readonly perSecond: number) {}

  hit(nowMs: number): RateVerdict {
    if (nowMs - this.windowStart >= 1000) {
      this.windowStart = nowMs;
      this.count = 0;
    }
    this.count++;
    if (this.count <= this.perSecond) return 'ok';
    return this.count > 2 * this.perSecond ? 'disconnect' : 'limited';
  }
}
