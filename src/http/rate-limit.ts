import { normalizeIp, type ThrottlerModuleOptions } from '@nestjs/throttler';
import type { RateLimitKey } from './edge-routes';
import { routeThrottlerKey, throttlerKey, type WindowThrottlerStorage } from './window-throttler.storage';

/** The one throttler: a minute's window per client and route (blocked for a window past it, the guard's default). */
const TTL_MS = 60_000;
const NAME = 'default';

/**
 * The REST rate limit, defined once: ThrottlerGuard applies it to the routes Express serves
 * (`moduleOptions` for ThrottlerModule), the edge router to its fast routes (`admit`). Both count
 * in the one storage with the same keys (the guard through `increment`, the edge router through
 * `hit`, its synchronous part, so that a fast answer is written in the turn its request
 * arrived), so a client has one budget per route whichever way its request is served.
 */
export class RestRateLimit {
  private readonly limitText: string;

  constructor(
    private readonly storage: WindowThrottlerStorage,
    private readonly perMinute: number,
  ) {
    this.limitText = String(perMinute);
  }

  moduleOptions(): ThrottlerModuleOptions {
    return { throttlers: [{ name: NAME, ttl: TTL_MS, limit: this.perMinute }], storage: this.storage, generateKey: throttlerKey };
  }

  /**
   * What ThrottlerGuard does for a request of `route` from `ip` (the client as `trust proxy` sees
   * it): one hit, its `X-RateLimit-*` headers appended to `headers`, or `Retry-After` and false
   * once refused.
   */
  admit(route: RateLimitKey, ip: string | undefined, headers: string[]): boolean {
    // No address (the socket already gone) keys as the guard's does, by `undefined`.
    const key = routeThrottlerKey(route.controller, route.method, NAME, normalizeIp(ip as string));
    const record = this.storage.hit(key, TTL_MS, this.perMinute, TTL_MS);
    if (record.isBlocked) {
      headers.push('Retry-After', String(record.timeToBlockExpire));
      return false;
    }
    headers.push('X-RateLimit-Limit', this.limitText, 'X-RateLimit-Remaining', String(Math.max(0, this.perMinute - record.totalHits)), 'X-RateLimit-Reset', String(record.timeToExpire));
    return true;
  }
}
