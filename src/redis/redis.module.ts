import { Global, Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { PollerModule } from '../poller/poller.module';
import { StreamModule } from '../stream/stream.module';
import { LeaderElection } from './leader-election.service';
import { RedisClients } from './redis.clients';
import { RedisHealthIndicator } from './redis.health';

/**
 * Several instances through Redis (registered only when REDIS_URL is set): the connections, the
 * leader election that turns the poller on and off, and the readiness check. StreamModule picks
 * the Redis tick log when RedisClients is there.
 */
@Global()
@Module({})
export class RedisModule {
  static forRoot(): DynamicModule {
    return {
      module: RedisModule,
      imports: [TerminusModule, PollerModule, StreamModule],
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
        LeaderElection,
        RedisHealthIndicator,
      ],
      exports: [RedisClients, LeaderElection, RedisHealthIndicator],
    };
  }
}
