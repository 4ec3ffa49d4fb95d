import { Module } from '@nestjs/common';
import { SourcesModule } from '../sources/sources.module';
import { StreamModule } from '../stream/stream.module';
import { PricePollerService } from './price-poller.service';

/** Needs SchedulerRegistry: the application imports ScheduleModule.forRoot() once. */
@Module({
  imports: [SourcesModule, StreamModule],
  providers: [PricePollerService],
  exports: [PricePollerService],
})
export class PollerModule {}
