import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { PriceStreamService } from './price-stream.service';

/**
 * Ready while at least one configured pair has a price confirmed within STALE_AFTER_MS, and the
 * last tick this instance tried to publish was written (or something was written since).
 */
@Injectable()
export class PriceHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly stream: PriceStreamService,
    private readonly config: AppConfig,
  ) {}

  check(key: string) {
    const now = Date.now();
    const pairs = Object.fromEntries(
      this.config.pairs.map((pair) => {
        const at = this.stream.lastConfirmedAt(pair);
        return [pair, { fresh: this.stream.isFresh(pair, now), ageMs: at === undefined ? null : now - at, latestId: this.stream.latest(pair)?.id ?? null }];
      }),
    );
    const anyFresh = Object.values(pairs).some((p) => p.fresh);
    const session = this.health.check(key);
    // Prices confirmed here that cannot be written reach nobody (e.g. a leader whose Redis does not answer).
    const failure = this.stream.writeFailure;
    if (failure) return session.down({ pairs, message: `ticks cannot be written to the log since ${new Date(failure.since).toISOString()}: ${failure.message}` });
    return anyFresh ? session.up({ pairs }) : session.down({ pairs, message: `no pair has a price newer than ${this.config.staleAfterMs} ms` });
  }
}
