import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { CandleBackfill } from './candle-backfill.service';
import { CandleStore } from './candle-store';

/** The candle store (separate from the tick window) and its backfill at start. */
@Module({
  imports: [StreamModule],
  providers: [CandleStore, CandleBackfill],
  exports: [CandleStore, CandleBackfill],
})
export class CandlesModule {}
