import { Global, Injectable, Module, type DynamicModule, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { PollerModule } from '../ingest/poller.module';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { PricePollerService, type PollReport, type SourcesReport } from '../ingest/price-poller.service';
import { RedisClients } from '../redis/redis.clients';
import { SharedSubSlots } from '../redis/shared-sub-slots';
import { SlotBroker } from '../stream/slots';
import { TickLog } from '../stream/tick-log';
import { ReplicaTickLog, WorkerLink } from './worker-link';

/** A refresh polls every source in turn; each may take SOURCE_TIMEOUT_MS. */
const REFRESH_TIMEOUT_MS = 60_000;

/** A worker's part of the service: metrics for the whole service, and with a replica log no polling of its own. */
@Injectable()
class WorkerRole implements OnModuleInit {
  constructor(
    private readonly link: WorkerLink,
    private readonly metrics: MetricsService,
    private readonly poller: PricePollerService,
    private readonly log: TickLog,
  ) {}

  onModuleInit(): void {
    this.link.answerMetrics(() => this.metrics.json());
    this.metrics.gatherWith(() => this.link.gatherMetrics());
    // Without REDIS_URL the primary polls and this worker's log is its replica; with Redis the
    // leader election decides, as between instances.
    if (this.log instanceof ReplicaTickLog) {
      this.poller.delegateTo({
        refresh: (pairs) => this.link.request<PollReport>({ ps: 'refresh', pairs: [...pairs] }, REFRESH_TIMEOUT_MS),
        report: () => this.link.request<SourcesReport>({ ps: 'sources' }),
      });
    }
  }
}

/**
 * What a worker process (WORKERS > 1) has instead of a process' own: connection slots counted by
 * the primary, metrics gathered by the primary, and, without REDIS_URL, the primary's window as
 * its tick log. AppModule registers it in place of LocalSlotsModule (and MemoryTickLogModule).
 */
@Global()
@Module({})
export class ClusterWorkerModule {
  static forRoot(link: WorkerLink, replica: ReplicaTickLog | undefined): DynamicModule {
    return {
      module: ClusterWorkerModule,
      imports: [PollerModule],
      providers: [
        { provide: WorkerLink, useValue: link },
        // With Redis, a worker is an instance of the per-sub cap across instances (SharedSubSlots).
        {
          provide: SlotBroker,
          useFactory: (config: AppConfig, lifecycle: LifecycleService, redis?: RedisClients) => SharedSubSlots.around(link.slots, redis, config, lifecycle),
          inject: [AppConfig, LifecycleService, { token: RedisClients, optional: true }],
        },
        ...(replica ? [{ provide: TickLog, useValue: replica }] : []),
        WorkerRole,
      ],
      exports: [WorkerLink, SlotBroker, ...(replica ? [TickLog] : [])],
    };
  }
}
