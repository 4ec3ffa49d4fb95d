import type { ServerResponse } from 'node:http';
import { normalizeIp, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import type { RateLimitKey } from './edge-routes';
import { routeThrottlerKey, throttlerKey } from './window-throttler.storage';

/** One throttler as ThrottlerGuard resolves it (no per-route overrides are used here). */
type Throttler = { readonly name: string; readonly ttl: number; readonly limit: number };

/**
 * The REST rate limit, defined once: ThrottlerGuard applies it to the routes Express serves
 * (`moduleOptions` for ThrottlerModule), the edge router to its fast routes (`admit`). Both count
 * through the storage's public `increment` with the same keys, so a client has one budget per
 * route whichever way its request is served.
 */
export class RestRateLimit {
  private readonly throttlers: readonly Throttler[];

  constructor(
    private readonly storage: ThrottlerStorage,
    perMinute: number,
  ) {
    this.throttlers = [{ name: 'default', ttl: 60_000, limit: perMinute }];
  }

  moduleOptions(): ThrottlerModuleOptions {
    return { throttlers: this.throttlers.map((t) => ({ ...t })), storage: this.storage, generateKey: throttlerKey };
  }

  /**
   * What ThrottlerGuard does for a request of `route` from `ip` (the client as `trust proxy` sees
   * it): one hit per throttler, `X-RateLimit-*` set, or `Retry-After` and false once refused.
   */
  async admit(route: RateLimitKey, ip: string | undefined, res: ServerResponse): Promise<boolean> {
    // No address (the socket already gone) keys as the guard's does, by `undefined`.
    const tracker = normalizeIp(ip as string);
    for (const t of this.throttlers) {
      // As the guard: the block lasts a window unless configured otherwise.
      const record = await this.storage.increment(routeThrottlerKey(route.controller, route.method, t.name, tracker), t.ttl, t.limit, t.ttl, t.name);
      const suffix = t.name === 'default' ? '' : `-${t.name}`;
      if (record.isBlocked) {
        res.setHeader(`Retry-After${suffix}`, record.timeToBlockExpire);
        return false;
      }
      res.setHeader(`X-RateLimit-Limit${suffix}`, t.limit);
      res.setHeader(`X-RateLimit-Remaining${suffix}`, Math.max(0, t.limit - record.totalHits));
      res.setHeader(`X-RateLimit-Reset${suffix}`, record.timeToExpire);
    }
    return true;
  }
}
