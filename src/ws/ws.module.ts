import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { PriceWsFeed } from './price-ws.feed';

/** Plain WebSocket feed on /api/ws, for clients that do not speak Socket.IO. */
@Module({
  imports: [StreamModule],
  providers: [PriceWsFeed],
})
export class WsModule {}
