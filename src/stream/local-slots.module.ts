import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { RedisClients } from '../redis/redis.clients';
import { SharedSubSlots } from '../redis/shared-sub-slots';
import { LocalSlots, SlotBroker } from './slots';

/**
 * Connection slots of a process that serves alone: it counts them itself (with Redis, a `sub`'s
 * across instances too: SharedSubSlots). ClusterWorkerModule provides the other kind.
 */
@Global()
@Module({
  providers: [
    {
      provide: SlotBroker,
      useFactory: (config: AppConfig, lifecycle: LifecycleService, redis?: RedisClients) =>
        SharedSubSlots.around(new LocalSlots(config.maxStreamConnections, config.maxStreamConnectionsPerIp), redis, config, lifecycle),
      inject: [AppConfig, LifecycleService, { token: RedisClients, optional: true }],
    },
  ],
  exports: [SlotBroker],
})
export class LocalSlotsModule {}
