import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { ApiExceptionFilter } from './common/api-exception.filter';
import type { AppConfig } from './config/app-config';
import { DEFAULT_CLIENT_DIR, serveClient } from './web/serve-client';

export type CreateAppOptions = {
  logger?: false;
  /** The built web client (default client/dist); tests point it elsewhere. */
  clientDir?: string;
};

/** Builds the application as main.ts runs it; e2e tests use the same function on port 0. */
export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), {
    // Idle keep-alive sockets must not hold up a shutdown.
    forceCloseConnections: true,
    ...(options.logger === false ? { logger: false } : {}),
  });
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');
  app.disable('x-powered-by');
  app.useGlobalFilters(new ApiExceptionFilter());
  const clientDir = options.clientDir ?? DEFAULT_CLIENT_DIR;
  if (!serveClient(app, clientDir)) {
    new Logger('WebClient').warn({ msg: 'web client not built, / answers 404 (run npm run build)', clientDir });
  }
  return app;
}
