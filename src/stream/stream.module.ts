import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PublishPort } from '../ingest/publish-port';
import { ConnectionRegistry, StreamGate } from './connection-registry';
import { PriceStreamService } from './price-stream.service';
import { TickLog } from './tick-log';
import { PriceHealthIndicator } from './price.health';
import { StaleWatch } from './stale-watch';
import { StreamHub } from './stream-hub';

/** The price stream and the subscription core. The TickLog comes from MemoryTickLogModule or RedisModule (both global). */
@Module({
  imports: [TerminusModule],
  providers: [
    PriceHealthIndicator,
    ConnectionRegistry,
    PriceStreamService,
    StreamHub,
    StaleWatch,
    StreamGate,
    { provide: PublishPort, useExisting: TickLog },
  ],
  exports: [PublishPort, PriceStreamService, PriceHealthIndicator, ConnectionRegistry, StreamGate, StreamHub],
})
export class StreamModule {}
