import { Module } from '@nestjs/common';
import { AdminTokenGuard } from '../admin/admin-token.guard';
import { CandlesModule } from '../candles/candles.module';
import { PollerModule } from '../ingest/poller.module';
import { StreamModule } from '../stream/stream.module';
import { CandlesController } from './candles.controller';
import { CandlesService } from './candles.service';
import { PricesEdge } from './prices.edge';
import { LegacyController } from './legacy.controller';
import { PricesController } from './prices.controller';
import { PricesService } from './prices.service';

@Module({
  imports: [StreamModule, PollerModule, CandlesModule],
  controllers: [PricesController, LegacyController, CandlesController],
  providers: [PricesService, CandlesService, PricesEdge, AdminTokenGuard],
})
export class PricesModule {}
