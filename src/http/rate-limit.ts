import type { ServerResponse } from 'node:http';
import { normalizeIp, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import type { RateLimitKey } from './edge-routes';
import { routeThrottlerKey, throttlerKey } from './window-throttler.storage';

/** The one throttler: a minute's window per client and route (blocked for a window past it, the guard's default). */
const TTL_MS = 60_000;
const NAME = 'default';

/**
 * The REST rate limit, defined once: ThrottlerGuard applies it to the routes Express serves
 * (`moduleOptions` for ThrottlerModule), the edge router to its fast routes (`admit`). Both count
 * through the storage's public `increment` with the same keys, so a client has one budget per
 * route whichever way its request is served.
 */
export class RestRateLimit {
  constructor(
    private readonly storage: ThrottlerStorage,
    private readonly perMinute: number,
  ) {}

  moduleOptions(): ThrottlerModuleOptions {
    return { throttlers: [{ name: NAME, ttl: TTL_MS, limit: this.perMinute }], storage: this.storage, generateKey: throttlerKey };
  }

  /**
   * What ThrottlerGuard does for a request of `route` from `ip` (the client as `trust proxy` sees
   * it): one hit, `X-RateLimit-*` set, or `Retry-After` and false once refused.
   */
  admit(route: RateLimitKey, ip: string | undefined, res: ServerResponse): Promise<boolean> {
    // No address (the socket already gone) keys as the guard's does, by `undefined`.
    const key = routeThrottlerKey(route.controller, route.method, NAME, normalizeIp(ip as string));
    return this.storage.increment(key, TTL_MS, this.perMinute, TTL_MS, NAME).then((record) => {
      if (record.isBlocked) {
        res.setHeader('Retry-After', record.timeToBlockExpire);
        return false;
      }
      res.setHeader('X-RateLimit-Limit', this.perMinute);
      res.setHeader('X-RateLimit-Remaining', Math.max(0, this.perMinute - record.totalHits));
      res.setHeader('X-RateLimit-Reset', record.timeToExpire);
      return true;
    });
  }
}
