import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger, LevelWithSilent } from 'pino';
import type { HttpMetrics } from '../metrics/http-metrics';
import { requestId } from '../http/request-id';

type RequestContext = { id: string; req: IncomingMessage };

const context = new AsyncLocalStorage<RequestContext>();

/**
 * pino's `mixin`: a line logged while a request is served carries its `requestId` and `req`
 * (the logger's `req` serializer makes it short). Called only when a line is written, so a
 * request that logs nothing (every successful one at LOG_LEVEL=warn) pays for no child logger,
 * bindings or serialisation.
 */
export function requestLogMixin(): { requestId?: string; req?: IncomingMessage } {
  const ctx = context.getStore();
  return ctx ? { requestId: ctx.id, req: ctx.req } : {};
}

/** pino-http's levels: errors and 5xx at error, 4xx at warn, the rest at info. */
export function responseLevel(statusCode: number, err?: unknown): 'error' | 'warn' | 'info' {
  return err || statusCode >= 500 ? 'error' : statusCode >= 400 ? 'warn' : 'info';
}

export type RequestLogOptions = {
  /** The application's root logger (level, redaction, destination). */
  logger: () => Logger;
  /** Requests whose access line would be noise (probes, scrapes); they still get an id. */
  quiet: (url: string) => boolean;
  /** Times every request (quiet ones too) into the request-duration histogram. */
  http?: HttpMetrics;
};

/**
 * What pino-http did for us, at the cost the configured level asks for: the request id (the
 * caller's X-Request-Id or a new one, echoed in the response), the request context for the lines
 * logged while it is served, and one access line when the response is done (`request completed`
 * or `request aborted`, with `req`, `res.statusCode`, `responseTime` and `requestId`). pino-http
 * built two child loggers per request and listened for three events whatever the level
 * (12% of a REST request's CPU under wrk, issue 16); here the only per-request cost at
 * LOG_LEVEL=warn is the id, one `close` listener and the context.
 */
export function requestLogMiddleware(options: RequestLogOptions) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const id = requestId(req, res);
    // Where pino-http kept it, for whoever reads it there.
    req.id = id;
    options.http?.observe(req, res);
    const logger = options.logger();
    // Nothing below error can be logged: the listener would only ever return.
    if (logger.isLevelEnabled('error') && !options.quiet(req.url ?? '')) {
      const startedAt = Date.now();
      res.once('close', () => accessLine(logger, id, req, res, Date.now() - startedAt));
    }
    context.run({ id, req }, next);
  };
}

/**
 * The same for a response written whole while its request is handled (the edge router's fast
 * routes): called once it is written, with the request's id and route template and the
 * `performance.now()` it started at. No `close` listener and no request context (nothing else
 * is logged while such a request is served).
 */
export function answeredRequestLog(options: RequestLogOptions) {
  return (req: IncomingMessage, res: ServerResponse, id: string, route: string, startedAt: number): void => {
    const elapsed = performance.now() - startedAt;
    options.http?.record(req.method, route, res.statusCode, elapsed);
    const logger = options.logger();
    if (logger.isLevelEnabled(responseLevel(res.statusCode)) && !options.quiet(req.url ?? '')) accessLine(logger, id, req, res, Math.round(elapsed));
  };
}

/** The access line: `request completed` or `request aborted`, or `request errored` for a 5xx, at its level. */
function accessLine(logger: Logger, id: string, req: IncomingMessage, res: ServerResponse, responseTime: number): void {
  const level: LevelWithSilent = responseLevel(res.statusCode);
  if (!logger.isLevelEnabled(level)) return;
  const line = { requestId: id, req, res, responseTime };
  const completed = !req.readableAborted && res.writableEnded;
  if (level === 'error') logger.error({ ...line, err: new Error(`failed with status code ${res.statusCode}`) }, 'request errored');
  else logger[level](line, completed ? 'request completed' : 'request aborted');
}
