import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { DestinationStream } from 'pino';
import { AdminModule } from './admin/admin.module';
import { throttlerKey, WindowThrottlerStorage } from './common/window-throttler.storage';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { HealthModule } from './health/health.module';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { PollerModule } from './poller/poller.module';
import { PricesModule } from './prices/prices.module';
import { RedisModule } from './redis/redis.module';
import { SocketIoModule } from './socketio/socketio.module';
import { SseModule } from './sse/sse.module';
import { MemoryTickLogModule } from './stream/memory-tick-log.module';
import { StreamModule } from './stream/stream.module';
import { WsModule } from './ws/ws.module';

@Module({})
export class AppModule {
  /** Stream routes come before PricesModule so that `/api/prices/stream` is not taken for a pair. */
  static register(config: AppConfig, logDestination?: DestinationStream): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(config, logDestination),
        MetricsModule,
        LifecycleModule,
        ScheduleModule.forRoot(),
        ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: config.rateLimitPerMinute }], storage: new WindowThrottlerStorage(), generateKey: throttlerKey }),
        StreamModule,
        PollerModule,
        SseModule,
        PricesModule,
        HealthModule,
        AdminModule,
        SocketIoModule,
        WsModule,
        config.redisUrl ? RedisModule.forRoot() : MemoryTickLogModule,
      ],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
    };
  }
}
