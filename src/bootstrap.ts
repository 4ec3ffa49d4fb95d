import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule, type WorkerOf } from './app.module';
import { ApiExceptionFilter } from './http/api-exception.filter';
import { documentConfig, finishDocument } from './http/openapi';
import { checkTargetLength } from './http/query';
import { securityHeaders } from './http/security-headers';
import { guardHttpServer } from './http/socket-guard';
import type { AppConfig } from './config/app-config';
import { LifecycleService } from './lifecycle/lifecycle.service';
import { PricesIoAdapter } from './socketio/prices-io.adapter';
import { DEFAULT_CLIENT_DIR, serveClient } from './web/serve-client';

export type CreateAppOptions = {
  /** Where log lines go (tests capture them); standard output by default. */
  logDestination?: DestinationStream;
  /** The built web client (default client/dist); tests point it elsewhere. */
  clientDir?: string;
  /** A worker process' link to its primary (WORKERS > 1). */
  worker?: WorkerOf;
};

/** Builds the application as main.ts runs it; e2e tests use the same function on port 0. */
export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config, options.logDestination, options.worker), {
    bufferLogs: true,
    // Idle keep-alive sockets must not hold up a shutdown.
    forceCloseConnections: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  // Before anything else listens on the server: every socket it takes in has its error handler.
  guardHttpServer(app.getHttpServer(), config.requestHeadTimeoutMs);
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');
  app.disable('x-powered-by');
  app.use(rejectLongUrls);
  app.useBodyParser('json', { limit: '16kb' });
  app.use(securityHeaders());
  app.enableCors({ origin: config.corsOrigins.length > 0 ? [...config.corsOrigins] : false, exposedHeaders: ['X-Request-Id', 'Retry-After'] });
  app.useGlobalFilters(new ApiExceptionFilter());
  app.useWebSocketAdapter(new PricesIoAdapter(app, config, app.get(LifecycleService), options.worker?.link.sessionPrefix));
  setupOpenApi(app);
  const clientDir = options.clientDir ?? DEFAULT_CLIENT_DIR;
  if (!serveClient(app, clientDir)) {
    new NestLogger('WebClient').warn({ msg: 'web client not built, / answers 404 (run npm run build)', clientDir });
  }
  return app;
}

/** Longer request targets are answered 414 before any routing. */
function rejectLongUrls(req: Request, _res: Response, next: NextFunction): void {
  try {
    checkTargetLength(req.url);
    next();
  } catch (err) {
    next(err);
  }
}

function setupOpenApi(app: NestExpressApplication): void {
  const document = finishDocument(SwaggerModule.createDocument(app, documentConfig('1')));
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
