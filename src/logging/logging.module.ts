import { hostname } from 'node:os';
import { Module, Optional, RequestMethod, type DynamicModule, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { LoggerModule, PinoLogger, type Params } from 'nestjs-pino';
import type { DestinationStream, Logger } from 'pino';
import { AppConfig } from '../config/app-config';
import type { HttpMetrics } from '../metrics/http-metrics';
import { MetricsService } from '../metrics/metrics.service';
import { STREAM_PATHS } from '../http/edge-routes';
import { redactToken } from '../auth/credentials';
import { answeredRequestLog, requestLogMiddleware, requestLogMixin } from './request-log';
import { stdoutLog } from './stdout-log';

/** Paths whose request/response lines would only be noise (probes and scrapes). */
const QUIET_PATHS = /^\/(health\/|metrics)/;

/** Anything that can carry a credential is redacted from every log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'apiKey',
  'token',
];

/** The request logger of every HTTP route (Express' middleware and the edge router's fast routes), timing each request into `http`. */
export function requestLogger(http?: HttpMetrics) {
  return requestLogMiddleware({ logger: () => PinoLogger.root as Logger, quiet: (url) => QUIET_PATHS.test(url), http });
}

/** The same for a response written while its request is handled (the fast routes, fast-rest.ts). */
export function answeredRequestLogger(http?: HttpMetrics) {
  return answeredRequestLog({ logger: () => PinoLogger.root as Logger, quiet: (url) => QUIET_PATHS.test(url), http });
}

/**
 * Structured logs with nestjs-pino (its Nest logger and root pino logger): JSON by default,
 * `LOG_FORMAT=pretty` for development. The per-request part (request id, access line, the
 * request's fields on lines logged while serving it) is `requestLogMiddleware`, not pino-http's.
 */
@Module({})
export class LoggingModule implements NestModule {
  static forRoot(config: AppConfig, destination?: DestinationStream): DynamicModule {
    const options = {
      level: config.logLevel,
      mixin: requestLogMixin,
      // One short line per request: the request id, method, path and status, not every header; a `token` parameter's value is never written.
      serializers: {
        // `ip`: the client as TRUST_PROXY resolves it (Express' req.ip), the address the rate limit and stream caps count.
        req: (req: { id: unknown; method: string; url: string; remoteAddress?: string; raw?: { ip?: string } }) => ({ id: req.id, method: req.method, url: redactToken(req.url), remoteAddress: req.remoteAddress, ip: req.raw?.ip }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // With workers every line names its process: worker 1..WORKERS, or 0 for the primary.
      ...(config.workers > 1 ? { base: { pid: process.pid, hostname: hostname(), worker: config.workerIndex ?? 0 } } : {}),
    };
    // JSON lines go to stdout through StdoutLog (a reader that is gone never holds up the exit);
    // `pretty` goes through pino-pretty's transport, a worker thread with its own stream.
    const pretty = config.logFormat === 'pretty' && !destination;
    const pinoHttp: Params['pinoHttp'] = pretty
      ? { ...options, transport: { target: 'pino-pretty', options: { singleLine: true } } }
      : [options, destination ?? stdoutLog()];
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp,
          // nestjs-pino's own request middleware (pino-http) is not mounted: see configure.
          forRoutes: [],
        }),
      ],
    };
  }

  constructor(@Optional() private readonly metrics?: MetricsService) {}

  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply(requestLogger(this.metrics?.http))
      // The stream routes are left out: SseEntry sets their request id, and StreamHub logs each
      // close (a stream's access line would come hours later).
      .exclude(...[...STREAM_PATHS].map((path) => ({ path: path.slice(1), method: RequestMethod.GET })))
      .forRoutes({ path: '{/*splat}', method: RequestMethod.ALL });
  }
}
