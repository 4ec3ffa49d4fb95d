import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { StreamAuth } from '../auth/stream-auth';
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
    StreamAuth,
    { provide: PublishPort, useExisting: TickLog },
  ],
  exports: [PublishPort, PriceStreamService, PriceHealthIndicator, ConnectionRegistry, StreamGate, StreamHub, StreamAuth],
})
export class StreamModule {}
