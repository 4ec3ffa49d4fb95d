import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import type { ErrorBody, ErrorCode } from '../shared/wire';
import { ApiError, PassthroughException } from './api-error';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'INVALID_QUERY',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  405: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'INVALID_PAYLOAD',
  429: 'RATE_LIMITED',
  503: 'SHUTTING_DOWN',
};

/** Our own words for what the framework and its middleware refuse; their messages can name parsers, classes and input. */
const MESSAGE_BY_CODE: Partial<Record<ErrorCode, string>> = {
  INVALID_JSON: 'the request body is not valid JSON',
  INVALID_ENCODING: 'the request path holds a malformed percent-encoding',
  INVALID_QUERY: 'malformed request',
  INVALID_PAYLOAD: 'unsupported request body',
  UNAUTHORIZED: 'authentication required',
  NOT_FOUND: 'no such route',
  PAYLOAD_TOO_LARGE: 'request body too large',
  URI_TOO_LONG: 'request target too long',
  RATE_LIMITED: 'too many requests; retry after the Retry-After delay',
  SHUTTING_DOWN: 'the server is shutting down; retry shortly',
};

/** What Express' body parser (SyntaxError) and router (URIError) throw, whether Nest wrapped it or not. */
function frameworkCode(err: object, statusCode: number): ErrorCode {
  const cause = err instanceof HttpException ? err.cause : err;
  if (statusCode === 400 && cause instanceof SyntaxError) return 'INVALID_JSON';
  if (statusCode === 400 && cause instanceof URIError) return 'INVALID_ENCODING';
  return CODE_BY_STATUS[statusCode] ?? (statusCode < 500 ? 'INVALID_QUERY' : 'INTERNAL_ERROR');
}

/**
 * Turns any error into `{statusCode, code, message}` with a stable code; never leaks a stack or an
 * internal message: only our own ApiErrors keep theirs, anything the framework raises (body
 * parser, URI decoding, throttler, unknown route) gets a message of ours by its code.
 */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof ApiError) return err.body();
  const status = err instanceof HttpException ? err.getStatus() : typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
  if (err instanceof HttpException && status >= 500) return { statusCode: status, code: CODE_BY_STATUS[status] ?? 'INTERNAL_ERROR', message: 'internal error' };
  if (typeof err !== 'object' || err === null || status < 400 || status >= 500) return { statusCode: 500, code: 'INTERNAL_ERROR', message: 'internal error' };
  const code = frameworkCode(err, status);
  return { statusCode: status, code, message: MESSAGE_BY_CODE[code] ?? 'malformed request' };
}

@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiExceptionFilter.name);

  catch(err: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const res = host.switchToHttp().getResponse<Response>();
    if (err instanceof PassthroughException) {
      res.status(err.getStatus()).json(err.getResponse());
      return;
    }
    const body = toErrorBody(err);
    if (body.statusCode >= 500) this.logger.error({ msg: 'unhandled error', err });
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(body.statusCode).json(body);
  }
}
