import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { DestinationStream } from 'pino';
import { AdminModule } from './admin/admin.module';
import { RestAuthGuard } from './auth/rest-auth';
import { ClusterWorkerModule } from './cluster/cluster-worker.module';
import type { ReplicaTickLog, WorkerLink } from './cluster/worker-link';
import { EdgeModule } from './http/edge-router';
import { RestRateLimit } from './http/rate-limit';
import { WindowThrottlerStorage } from './http/window-throttler.storage';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { HealthModule } from './health/health.module';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { PollerModule } from './ingest/poller.module';
import { PublishPortModule } from './ingest/publish-port';
import { PricesModule } from './prices/prices.module';
import { RedisModule } from './redis/redis.module';
import { SocketIoModule } from './socketio/socketio.module';
import { SseModule } from './sse/sse.module';
import { LocalSlotsModule } from './stream/local-slots.module';
import { MemoryTickLogModule } from './stream/memory-tick-log.module';
import { StreamModule } from './stream/stream.module';
import { WsModule } from './ws/ws.module';

/** What a worker process (WORKERS > 1) brings: its link to the primary and, without Redis, its replica of the primary's window. */
export type WorkerOf = { link: WorkerLink; replica: ReplicaTickLog | undefined };

@Module({})
export class AppModule {
  /** Stream routes come before PricesModule so that `/api/prices/stream` is not taken for a pair. */
  static register(config: AppConfig, logDestination?: DestinationStream, worker?: WorkerOf): DynamicModule {
    // The tick log: Redis (several instances, or workers as instances), the primary's window (a
    // worker without Redis), or this process' own. Connection slots: the primary's, or our own.
    const log = config.redis ? [RedisModule.forRoot()] : worker ? [] : [MemoryTickLogModule];
    const slots = worker ? ClusterWorkerModule.forRoot(worker.link, worker.replica) : LocalSlotsModule;
    // One rate limit for the guard (Express' routes) and the edge router (its fast routes).
    const rateLimit = new RestRateLimit(new WindowThrottlerStorage(), config.rateLimitPerMinute);
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(config, logDestination),
        MetricsModule,
        LifecycleModule,
        ScheduleModule.forRoot(),
        ThrottlerModule.forRoot(rateLimit.moduleOptions()),
        EdgeModule.forRoot(rateLimit),
        StreamModule,
        PublishPortModule.from(StreamModule),
        PollerModule,
        SseModule,
        PricesModule,
        HealthModule,
        AdminModule,
        SocketIoModule,
        WsModule,
        ...log,
        slots,
      ],
      // The rate limit first, then (AUTH_REQUIRED=all) the subscriber token of REST under /api/.
      providers: [
        { provide: APP_GUARD, useClass: ThrottlerGuard },
        { provide: APP_GUARD, useClass: RestAuthGuard },
      ],
    };
  }
}
