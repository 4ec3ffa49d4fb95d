import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MemoryTickLog } from './memory-tick-log';
import { TickLog } from './tick-log';

/** The tick log of a service on its own (no REDIS_URL): in memory. RedisModule provides the other one. */
@Global()
@Module({
  providers: [{ provide: TickLog, useFactory: (config: AppConfig) => new MemoryTickLog(config), inject: [AppConfig] }],
  exports: [TickLog],
})
export class MemoryTickLogModule {}
