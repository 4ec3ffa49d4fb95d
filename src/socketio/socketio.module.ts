import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { HandshakeSlots } from './handshake-slots';
import { PricesGateway } from './prices.gateway';

/** Socket.IO namespace /prices; bootstrap.ts installs PricesIoAdapter for its server options. */
@Module({
  imports: [StreamModule],
  providers: [PricesGateway, HandshakeSlots],
})
export class SocketIoModule {}
