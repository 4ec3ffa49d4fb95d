import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { ConnectionRegistry } from './connection-registry';
import { MemoryTickLog } from './memory-tick-log';
import { PriceStreamService } from './price-stream.service';
import { PriceHealthIndicator } from './price.health';
import { TickLog } from './tick-log';

@Module({
  imports: [TerminusModule],
  providers: [
    PriceHealthIndicator,
    ConnectionRegistry,
    { provide: TickLog, useFactory: (config: AppConfig) => new MemoryTickLog(config), inject: [AppConfig] },
    PriceStreamService,
  ],
  exports: [PriceStreamService, PriceHealthIndicator, ConnectionRegistry],
})
export class StreamModule {}
