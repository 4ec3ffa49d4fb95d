import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PricePollerService } from './price-poller.service';

/**
 * Each source's circuit and push feed, for the readiness details (on a worker without Redis,
 * the primary's, which polls). Informational and always up: price freshness (the prices
 * indicator) is what decides readiness, as the contract says.
 */
@Injectable()
export class SourcesHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly poller: PricePollerService,
  ) {}

  async check(key: string) {
    return this.health.check(key).up({ ...(await this.poller.sourcesReport()) });
  }
}
