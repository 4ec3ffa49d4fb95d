import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PricePollerService } from './price-poller.service';

/**
 * Each source's circuit, for the readiness details. Informational and always up: price
 * freshness (the prices indicator) is what decides readiness, as the contract says.
 */
@Injectable()
export class SourcesHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly poller: PricePollerService,
  ) {}

  check(key: string) {
    const circuits = this.poller.sourceCircuits().map((c) => ({
      source: c.source,
      state: c.state,
      consecutiveFailures: c.consecutiveFailures,
      nextAttemptAt: c.nextAttemptAt,
      lastError: c.lastError?.message ?? null,
    }));
    return this.health.check(key).up({ polling: this.poller.isEnabled, circuits, push: this.poller.pushFeeds() });
  }
}
