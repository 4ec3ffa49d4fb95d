import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { LatestEntry } from './latest-entry';
import { LegacyController } from './legacy.controller';
import { PricesController } from './prices.controller';
import { PricesService } from './prices.service';

@Module({
  imports: [StreamModule],
  controllers: [PricesController, LegacyController],
  providers: [PricesService, LatestEntry],
})
export class PricesModule {}
