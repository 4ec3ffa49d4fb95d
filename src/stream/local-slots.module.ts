import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { LocalSlots, SlotBroker } from './slots';

/** Connection slots of a process that serves alone: it counts them itself. ClusterWorkerModule provides the other kind. */
@Global()
@Module({
  providers: [{ provide: SlotBroker, useFactory: (config: AppConfig) => new LocalSlots(config.maxStreamConnections, config.maxStreamConnectionsPerIp), inject: [AppConfig] }],
  exports: [SlotBroker],
})
export class LocalSlotsModule {}
