import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { performance } from 'node:perf_hooks';
import { answeredRequestLogger } from '../logging/logging.module';
import type { HttpMetrics } from '../metrics/http-metrics';
import { isFresh } from '../prices/latest-body';
import { toErrorBody } from './api-exception.filter';
import { corsHeaders } from './cors';
import type { EdgeRoute } from './edge-routes';
import { MAX_URL_LENGTH } from './limits';
import type { RestRateLimit } from './rate-limit';
import { idHeaders, requestIdOf } from './request-id';
import { STRICT_SECURITY_HEADERS } from './security-headers';

/** A fast route's answer: JSON its handler built (often once per tick), and its own ETag if it has one (else Express' weak one). */
export type FastAnswer = { readonly status?: number; readonly json: string; readonly length?: number; readonly etag?: string };

/** A request target as Express reads it: the path, and the query without its `?` when there is one. */
export type FastTarget = { readonly path: string; readonly query: string | undefined };

/**
 * A fast REST route's handler: the answer, an ApiError thrown for an error answer (the same body
 * and status the controller's would give), or undefined to leave the request to Express.
 */
export type FastRestHandler = (target: FastTarget, req: IncomingMessage) => FastAnswer | undefined;

/**
 * The path and query of a target that Express' parser (parseurl) splits the same way: its fast
 * path takes a target without `#` and white space as it is. Anything else, and a target past
 * MAX_URL_LENGTH (414), is left to Express.
 */
export function plainTarget(url: string): FastTarget | undefined {
  if (url.length > MAX_URL_LENGTH || url.charCodeAt(0) !== 0x2f || /[\t\n\f\r #\u00a0\ufeff]/.test(url)) return undefined;
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: undefined } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** Express' default ETag of a body (the `etag` package, weak): its length and the start of its SHA-1. */
export function weakEtag(body: string): string {
  const length = Buffer.byteLength(body);
  if (length === 0) return 'W/"0-2jmj7l5rSw0yVb/vlWAYkK/YBwk"';
  return `W/"${length.toString(16)}-${createHash('sha1').update(body, 'utf8').digest('base64').substring(0, 27)}"`;
}

const RATE_LIMITED: FastAnswer = withEtag({ status: 429, json: JSON.stringify(toErrorBody(new ThrottlerException())) });

/** An answer with its ETag and byte length, computed once for an answer that is reused. */
export function withEtag(answer: FastAnswer): FastAnswer {
  return { ...answer, etag: answer.etag ?? weakEtag(answer.json), length: answer.length ?? Buffer.byteLength(answer.json) };
}

/**
 * What Express and Nest do around a REST route, for the fast routes: the request id and access
 * line (`answeredRequestLogger`), helmet's headers (recorded from the same middleware), CORS for
 * CORS_ORIGINS, the rate limit (RestRateLimit: the guard's storage, keys and headers; 429
 * RATE_LIMITED with Retry-After), then the answer with Content-Type, Content-Length, ETag and
 * 304 as `res.json` would send it: every header in one `writeHead`, the whole answer written
 * while the request is handled. Through Express and Nest a request cost ~0.25 ms of CPU, most of
 * it the router's layers, Nest's execution context and promise chain, and the response helpers.
 */
export class FastRest {
  private readonly logger = new Logger(FastRest.name);
  private readonly logRequest: ReturnType<typeof answeredRequestLogger>;

  constructor(
    private readonly rateLimit: RestRateLimit,
    private readonly corsOrigins: readonly string[],
    private readonly clientIp: (req: IncomingMessage) => string | undefined,
    http?: HttpMetrics,
  ) {
    this.logRequest = answeredRequestLogger(http);
  }

  /** Answers the request when its handler has an answer; false leaves it to Express untouched. */
  serve(req: IncomingMessage, res: ServerResponse, route: EdgeRoute, handler: FastRestHandler): boolean {
    const startedAt = performance.now();
    const target = plainTarget(req.url ?? '/');
    if (target === undefined) return false;
    let answer: FastAnswer | undefined;
    try {
      answer = handler(target, req);
    } catch (err) {
      answer = this.errorAnswer(err);
    }
    if (answer === undefined) return false;
    const id = requestIdOf(req);
    // Where pino-http kept it, for whoever reads it there.
    req.id = id;
    const headers: string[] = [];
    idHeaders(id, headers);
    for (const header of STRICT_SECURITY_HEADERS) headers.push(header);
    corsHeaders(req, this.corsOrigins, headers);
    if (route.rateLimit !== undefined && !this.rateLimit.admit(route.rateLimit, this.clientIp(req), headers)) answer = RATE_LIMITED;
    send(req, res, answer, headers);
    this.logRequest(req, res, id, route.template, startedAt);
    return true;
  }

  /** An error as ApiExceptionFilter answers it (a 5xx logged). */
  private errorAnswer(err: unknown): FastAnswer {
    const body = toErrorBody(err);
    if (body.statusCode >= 500) this.logger.error({ msg: 'unhandled error', err });
    return { status: body.statusCode, json: JSON.stringify(body) };
  }
}

/** `res.json` (Express): the ETag, and 304 for a 2xx its If-None-Match names. */
function send(req: IncomingMessage, res: ServerResponse, answer: FastAnswer, headers: string[]): void {
  const status = answer.status ?? 200;
  const etag = answer.etag ?? weakEtag(answer.json);
  headers.push('ETag', etag);
  if (status >= 200 && status < 300 && isFresh(req.headers, etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  headers.push('Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(answer.length ?? Buffer.byteLength(answer.json)));
  res.writeHead(status, headers);
  res.end(answer.json);
}
