import { Module, type DynamicModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { HealthModule } from './health/health.module';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { PricesModule } from './prices/prices.module';
import { SocketIoModule } from './socketio/socketio.module';
import { StreamModule } from './stream/stream.module';
import { WsModule } from './ws/ws.module';

@Module({})
export class AppModule {
  /** Stream routes come before PricesModule so that `/api/prices/stream` is not taken for a pair. */
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), LifecycleModule, ScheduleModule.forRoot(), StreamModule, PricesModule, HealthModule, SocketIoModule, WsModule],
    };
  }
}
