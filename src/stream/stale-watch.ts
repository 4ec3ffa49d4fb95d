import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { PriceStreamService } from './price-stream.service';
import { StreamHub } from './stream-hub';

/** How often the pairs' freshness is looked at: a pair that goes stale is told within this. */
const CHECK_MS = 250;

/**
 * Tells the subscribers when a pair's price goes stale (no fresh price for STALE_AFTER_MS: every
 * source of it failing) and when it is fresh again, so that no screen shows a stale price as the
 * current one. Only a pair that has a price can go stale; before its first, there is nothing to
 * show. Runs in every process that serves streams (its confirmations come with the ticks).
 */
@Injectable()
export class StaleWatch implements OnApplicationBootstrap, OnApplicationShutdown {
  /** The pairs stale now, with the time of their last fresh price. */
  private readonly staleSince = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly stream: PriceStreamService,
    private readonly hub: StreamHub,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Compares each pair's freshness with what was said last; says what changed. */
  check(nowMs = Date.now()): void {
    for (const pair of this.config.pairs) {
      if (!this.stream.latest(pair)) continue;
      const fresh = this.stream.isFresh(pair, nowMs);
      const stale = this.staleSince.has(pair);
      if (!fresh && !stale) {
        const since = this.stream.lastConfirmedAt(pair) ?? nowMs;
        this.staleSince.set(pair, since);
        this.hub.pairStatus({ pair, state: 'stale', since: new Date(since).toISOString() });
      } else if (fresh && stale) {
        this.staleSince.delete(pair);
        this.hub.pairStatus({ pair, state: 'fresh', since: new Date(this.stream.lastConfirmedAt(pair) ?? nowMs).toISOString() });
      }
    }
  }
}
