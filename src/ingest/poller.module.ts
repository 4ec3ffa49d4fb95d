import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { SourceRegistry } from '../sources/source-registry';
import { SourcesModule } from '../sources/sources.module';
import { FailoverPolicy } from './failover.policy';
import { IngestPolicy } from './ingest-policy';
import { MedianPolicy } from './median.policy';
import { PricePollerService } from './price-poller.service';
import { PublishPort } from './publish-port';
import { SourceCaller } from './source-caller';
import { SourcesHealthIndicator } from './sources.health';

/** The policy PRICE_MODE names, publishing to `port`. */
export function policyFor(config: AppConfig, registry: SourceRegistry, caller: SourceCaller, port: PublishPort, metrics: MetricsService): IngestPolicy {
  const Policy = config.priceMode === 'median' ? MedianPolicy : FailoverPolicy;
  return new Policy(registry, caller, port, config, metrics);
}

/**
 * The ingest: sources and push feeds → the policy (checks, throttle) → the PublishPort. Needs
 * SchedulerRegistry (the application imports ScheduleModule.forRoot() once) and a PublishPort
 * from a global module (PublishPortModule.from(StreamModule) in the application; the primary's
 * own in src/cluster/primary.module.ts): it does not import the stream.
 */
@Module({
  imports: [SourcesModule, TerminusModule],
  providers: [
    SourceCaller,
    { provide: IngestPolicy, useFactory: policyFor, inject: [AppConfig, SourceRegistry, SourceCaller, PublishPort, MetricsService] },
    PricePollerService,
    SourcesHealthIndicator,
  ],
  exports: [PricePollerService, SourcesHealthIndicator],
})
export class PollerModule {}
