import { Module } from '@nestjs/common';
import { AdminTokenGuard } from '../admin/admin-token.guard';
import { PollerModule } from '../poller/poller.module';
import { StreamModule } from '../stream/stream.module';
import { LegacyController } from './legacy.controller';
import { PricesController } from './prices.controller';
import { PricesService } from './prices.service';

@Module({
  imports: [StreamModule, PollerModule],
  controllers: [PricesController, LegacyController],
  providers: [PricesService, AdminTokenGuard],
})
export class PricesModule {}
