import type { IncomingMessage, ServerResponse } from 'node:http';
import { Module, RequestMethod, type DynamicModule } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { requestId } from '../common/request-id';
import { AppConfig } from '../config/app-config';
import { SSE_ROUTES } from '../sse/sse-routes';

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

/** Structured logs with nestjs-pino: JSON by default, `LOG_FORMAT=pretty` for development. */
@Module({})
export class LoggingModule {
  static forRoot(config: AppConfig, destination?: DestinationStream): DynamicModule {
    const options = {
      level: config.logLevel,
      genReqId: requestId,
      customProps: (req: IncomingMessage & { id?: unknown }) => ({ requestId: req.id }),
      // One short line per request: the request id, method, path and status, not every header.
      serializers: {
        // `ip`: the client as TRUST_PROXY resolves it (Express' req.ip), the address the rate limit and stream caps count.
        req: (req: { id: unknown; method: string; url: string; remoteAddress?: string; raw?: { ip?: string } }) => ({ id: req.id, method: req.method, url: req.url, remoteAddress: req.remoteAddress, ip: req.raw?.ip }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      autoLogging: { ignore: (req: IncomingMessage) => QUIET_PATHS.test(req.url ?? '') },
      // Long-lived streams log their own open and close; their HTTP line would come at the end.
      customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) =>
        err || res.statusCode >= 500 ? ('error' as const) : res.statusCode >= 400 ? ('warn' as const) : ('info' as const),
      ...(config.logFormat === 'pretty' && !destination ? { transport: { target: 'pino-pretty', options: { singleLine: true } } } : {}),
    };
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: destination ? [options, destination] : options,
          // The SSE routes are left out: a stream lives for hours, and pino-http would keep two
          // child loggers, their bindings and listeners for each one all that time (~2.5 KB per
          // connection). SseEntry sets the request id and StreamHub logs each close.
          exclude: SSE_ROUTES.map((path) => ({ path: path.slice(1), method: RequestMethod.GET })),
        }),
      ],
    };
  }
}
