import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';

/** What the guard reads back (the library does not export the type by its name). */
export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** One key's state: a counter and two instants, the same size after one hit or a million. */
type WindowRecord = { windowEndsAt: number; hits: number; blockedUntil: number };

/**
 * The REST rate limit's storage: a fixed window per key (it opens at the key's first hit and
 * lasts `ttl`), and once a hit goes past the limit the key is blocked for `blockDuration` (the
 * window's length when 0), answered 429 with Retry-After until then.
 *
 * @nestjs/throttler's own in-memory storage keeps every hit's expiry and filters that list on
 * every hit, so each request of a client costs more the more requests it sent in the last
 * minute: one busy client wore the whole service down (issue 16). Here a hit is a map lookup and
 * a few comparisons whatever the number of hits counted. The price of the fixed window: a client
 * may send up to twice the limit across a window boundary, as with most counters (express-rate-limit's
 * memory store, nginx' limit_req without burst is stricter).
 */
export class WindowThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly records = new Map<string, WindowRecord>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly sweepEveryMs = 60_000,
  ) {}

  increment(key: string, ttl: number, limit: number, blockDuration: number): Promise<ThrottlerStorageRecord> {
    return Promise.resolve(this.hit(key, ttl, limit, blockDuration));
  }

  /** The synchronous part of `increment` (what the guard awaits). */
  hit(key: string, ttl: number, limit: number, blockDuration: number): ThrottlerStorageRecord {
    const now = this.now();
    let record = this.records.get(key);
    if (record === undefined) {
      record = { windowEndsAt: now + ttl, hits: 0, blockedUntil: 0 };
      this.records.set(key, record);
      this.startSweep();
    } else if (record.blockedUntil !== 0 && record.blockedUntil <= now) {
      // A block that ended starts a fresh window at once, as the library's storage does.
      record.windowEndsAt = now + ttl;
      record.hits = 0;
      record.blockedUntil = 0;
    } else if (record.blockedUntil === 0 && record.windowEndsAt <= now) {
      record.windowEndsAt = now + ttl;
      record.hits = 0;
    }
    if (record.blockedUntil === 0) {
      record.hits++;
      if (record.hits > limit) record.blockedUntil = now + (blockDuration > 0 ? blockDuration : record.windowEndsAt - now);
    }
    const isBlocked = record.blockedUntil !== 0;
    return {
      totalHits: record.hits,
      timeToExpire: Math.max(0, Math.ceil((record.windowEndsAt - now) / 1000)),
      isBlocked,
      timeToBlockExpire: isBlocked ? Math.max(1, Math.ceil((record.blockedUntil - now) / 1000)) : 0,
    };
  }

  /** Keys held (for tests and the sweep's own check). */
  get size(): number {
    return this.records.size;
  }

  /** Forgets keys whose window and block are over; runs every `sweepEveryMs`, never per request. */
  evictExpired(now = this.now()): void {
    for (const [key, record] of this.records) {
      if (record.windowEndsAt <= now && record.blockedUntil <= now) this.records.delete(key);
    }
    if (this.records.size === 0) this.stopSweep();
  }

  onApplicationShutdown(): void {
    this.stopSweep();
    this.records.clear();
  }

  private startSweep(): void {
    if (this.sweep) return;
    this.sweep = setInterval(() => this.evictExpired(), this.sweepEveryMs);
    this.sweep.unref();
  }

  private stopSweep(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
  }
}

/**
 * The throttler's key without the library's sha256 of it (a hash per request for a key that is
 * only ever a map key here): the route's class and handler, the throttler's name and the client.
 */
export function throttlerKey(context: { getClass(): { name: string }; getHandler(): { name: string } }, tracker: string, throttlerName: string): string {
  return routeThrottlerKey(context.getClass().name, context.getHandler().name, throttlerName, tracker);
}

/** The same key from the names of the route's class and handler (the edge router's fast routes). */
export function routeThrottlerKey(className: string, handlerName: string, throttlerName: string, tracker: string): string {
  return `${className}-${handlerName}-${throttlerName}-${tracker}`;
}
