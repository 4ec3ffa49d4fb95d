import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import type { Express, NextFunction, Request, Response } from 'express';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule, type WorkerOf } from './app.module';
import { ApiExceptionFilter } from './http/api-exception.filter';
import { applyRecordedDecorators } from './http/api-docs';
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

/** Builds the application as service.ts runs it; e2e tests use the same function on port 0. */
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
  serveOpenApi(app);
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

/** Where the OpenAPI document and its UI are served: /docs (and below), /docs-json, /docs-yaml. */
const DOCS_PATH = /^\/docs(?:[/-]|$)/;

/**
 * The OpenAPI document (/docs-json, /docs-yaml) and its UI (/docs), set up by @nestjs/swagger on
 * the first request for one of them: the library is not loaded at start-up (http/api-docs.ts).
 * Its routes go into an Express app of their own, mounted here before the app's 404 handler
 * (which Nest adds at `init`, ahead of any route added later).
 */
function serveOpenApi(app: NestExpressApplication): void {
  const docs = new ExpressAdapter();
  const docsApp = docs.getInstance<Express>();
  docsApp.disable('x-powered-by');
  let ready: Promise<void> | undefined;
  docsApp.use((req: Request, _res: Response, next: NextFunction) => {
    if (!DOCS_PATH.test(req.path)) return next('router');
    (ready ??= setUpDocs(app, docs)).then(() => next(), next);
  });
  app.use(docsApp);
}

async function setUpDocs(app: NestExpressApplication, docs: ExpressAdapter): Promise<void> {
  const swagger = await import('@nestjs/swagger');
  applyRecordedDecorators(swagger);
  // What SwaggerModule.setup uses of an app: its HTTP adapter (the routes) and useStaticAssets
  // (the UI's files); operations.e2e checks the UI, its files and the document are served.
  const host = { getHttpAdapter: () => docs, useStaticAssets: (path: string, options: object) => docs.useStaticAssets(path, options) };
  const document = () => finishDocument(swagger.SwaggerModule.createDocument(app, documentConfig(swagger.DocumentBuilder, '1')));
  swagger.SwaggerModule.setup('docs', host as unknown as NestExpressApplication, document, { jsonDocumentUrl: 'docs-json' });
}
