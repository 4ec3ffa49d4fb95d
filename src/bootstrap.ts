import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { ApiExceptionFilter } from './common/api-exception.filter';
import type { AppConfig } from './config/app-config';
import { LifecycleService } from './lifecycle/lifecycle.service';
import { PricesIoAdapter } from './socketio/prices-io.adapter';

/** Builds the application as main.ts runs it; e2e tests use the same function on port 0. */
export async function createApp(config: AppConfig, options: { logger?: false } = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), {
    // Idle keep-alive sockets must not hold up a shutdown.
    forceCloseConnections: true,
    ...(options.logger === false ? { logger: false } : {}),
  });
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');
  app.disable('x-powered-by');
  app.useGlobalFilters(new ApiExceptionFilter());
  app.useWebSocketAdapter(new PricesIoAdapter(app, config, app.get(LifecycleService)));
  return app;
}
