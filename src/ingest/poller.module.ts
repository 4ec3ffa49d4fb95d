import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SourcesModule } from '../sources/sources.module';
import { StreamModule } from '../stream/stream.module';
import { PricePollerService } from './price-poller.service';
import { SourcesHealthIndicator } from './sources.health';

/** Needs SchedulerRegistry: the application imports ScheduleModule.forRoot() once. */
@Module({
  imports: [SourcesModule, StreamModule, TerminusModule],
  providers: [PricePollerService, SourcesHealthIndicator],
  exports: [PricePollerService, SourcesHealthIndicator],
})
export class PollerModule {}
