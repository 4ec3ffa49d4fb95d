import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import type { ErrorBody, ErrorCode } from '../shared/wire';
import { ApiError, PassthroughException } from './api-error';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'INVALID_QUERY',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  429: 'RATE_LIMITED',
  503: 'SHUTTING_DOWN',
};

/** Turns any error into `{statusCode, code, message}` with a stable code; never leaks a stack or an internal message. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof ApiError) return err.body();
  if (err instanceof HttpException) {
    const statusCode = err.getStatus();
    const res = err.getResponse();
    const code = (typeof res === 'object' && res !== null && 'code' in res && typeof res.code === 'string' ? res.code : undefined) as ErrorCode | undefined;
    const message = statusCode < 500 ? err.message : 'internal error';
    return { statusCode, code: code ?? CODE_BY_STATUS[statusCode] ?? (statusCode < 500 ? 'INVALID_QUERY' : 'INTERNAL_ERROR'), message };
  }
  // Errors raised by Express' own middleware (body parser, URI decoding) carry a status.
  if (typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    const statusCode = err.status;
    return { statusCode, code: CODE_BY_STATUS[statusCode] ?? 'INVALID_QUERY', message: statusCode === 413 ? 'request body too large' : 'malformed request' };
  }
  return { statusCode: 500, code: 'INTERNAL_ERROR', message: 'internal error' };
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
