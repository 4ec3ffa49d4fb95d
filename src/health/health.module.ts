import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PollerModule } from '../ingest/poller.module';
import { StreamModule } from '../stream/stream.module';
import { HealthController } from './health.controller';

/** Wires the indicators that the features export; holds no checks of its own but the lifecycle one. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), StreamModule, PollerModule],
  controllers: [HealthController],
})
export class HealthModule {}
