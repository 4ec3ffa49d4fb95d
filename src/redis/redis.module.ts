import { Global, Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { PollerModule } from '../ingest/poller.module';
import { TickLog } from '../stream/tick-log';
import { LeaderElection } from './leader-election.service';
import { RedisTickLog } from './redis-tick-log';
import { RedisClients } from './redis.clients';
import { RedisHealthIndicator } from './redis.health';

/**
 * Several instances through Redis (registered only when REDIS_URL or REDIS_SENTINELS is set, instead of
 * MemoryTickLogModule): the connections, the tick log as a Redis Stream, the leader election that
 * turns the poller on and off, and the readiness check.
 */
@Global()
@Module({})
export class RedisModule {
  static forRoot(): DynamicModule {
    return {
      module: RedisModule,
      imports: [TerminusModule, PollerModule],
      providers: [
        {
          provide: RedisClients,
          useFactory: async (config: AppConfig) => {
            const clients = new RedisClients(config);
            await clients.connect();
            return clients;
          },
          inject: [AppConfig],
        },
        {
          provide: TickLog,
          useFactory: (redis: RedisClients, config: AppConfig, metrics: MetricsService) =>
            new RedisTickLog(redis, config, { onTailLag: (seconds) => metrics.redisTailLag.set(seconds) }),
          inject: [RedisClients, AppConfig, MetricsService],
        },
        LeaderElection,
        RedisHealthIndicator,
      ],
      exports: [RedisClients, TickLog, LeaderElection, RedisHealthIndicator],
    };
  }
}
