import { Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config';
import { changes, type TickDraft } from '../stream/tick-log';
import type { PublishPort } from './publish-port';

/**
 * The ingest's last step before the publish port: at most one tick per pair per
 * MIN_TICK_INTERVAL_MS. A price that comes sooner waits for the rest of the interval, and a
 * newer one replaces it while it waits (the latest wins). The policies extend it, so that a
 * price goes from the policy to the port in one call (`emit`).
 */
export class TickThrottle {
  protected readonly logger = new Logger(this.constructor.name);
  /** When each pair last got a tick (only with MIN_TICK_INTERVAL_MS). */
  private readonly lastTickAt = new Map<string, number>();
  /** Ticks waiting for the rest of their pair's MIN_TICK_INTERVAL_MS; the latest wins. */
  private readonly deferred = new Map<string, { draft: TickDraft; timer: NodeJS.Timeout }>();

  constructor(
    protected readonly port: PublishPort,
    protected readonly config: AppConfig,
  ) {}

  /** Drops the ticks that wait for their interval (shutdown). */
  clearDeferred(): void {
    for (const { timer } of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
  }

  /** The price a new one is judged against: the pair's latest tick, or the one waiting to be one. */
  protected reference(pair: string): number | undefined {
    return this.deferred.get(pair)?.draft.price ?? this.port.latest(pair)?.price;
  }

  /**
   * Publishes at most one tick per pair per MIN_TICK_INTERVAL_MS: a price that comes sooner
   * waits for the rest of the interval, and a newer one replaces it while it waits.
   */
  protected async emit(draft: TickDraft): Promise<void> {
    const waiting = this.deferred.get(draft.pair);
    if (waiting) {
      waiting.draft = draft;
      this.port.confirm(draft.pair, Date.parse(draft.timestamp));
      return;
    }
    const last = this.lastTickAt.get(draft.pair);
    const waitMs = last === undefined ? 0 : last + this.config.minTickIntervalMs - Date.now();
    const latest = this.port.latest(draft.pair);
    // Unchanged (price and bid/ask): nothing to bound, publish only confirms it.
    const unchanged = !changes(latest, draft);
    if (waitMs <= 0 || unchanged) {
      // The interval starts now, not when the publish settles (with Redis a later turn's quote would find it open).
      if (!unchanged && this.config.minTickIntervalMs > 0) this.lastTickAt.set(draft.pair, Date.now());
      await this.publish(draft);
      return;
    }
    this.port.confirm(draft.pair, Date.parse(draft.timestamp));
    const entry = {
      draft,
      timer: setTimeout(() => {
        this.deferred.delete(draft.pair);
        // As on the immediate path: the next interval starts now, not when the publish settles.
        this.lastTickAt.set(draft.pair, Date.now());
        void this.publish(entry.draft);
      }, waitMs),
    };
    this.deferred.set(draft.pair, entry);
  }

  private async publish(draft: TickDraft): Promise<void> {
    try {
      const tick = await this.port.publish(draft);
      if (tick && this.config.minTickIntervalMs > 0) this.lastTickAt.set(draft.pair, Date.now());
    } catch (err) {
      this.logger.error({ msg: 'could not publish a price', pair: draft.pair, source: draft.source, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
