import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MemoryTickLog } from './memory-tick-log';
import { PriceStreamService } from './price-stream.service';
import { TickLog } from './tick-log';

@Module({
  providers: [{ provide: TickLog, useFactory: (config: AppConfig) => new MemoryTickLog(config), inject: [AppConfig] }, PriceStreamService],
  exports: [PriceStreamService],
})
export class StreamModule {}
