import { HttpException } from '@nestjs/common';
import type { ErrorBody, ErrorCode } from '../shared/wire';

/** An error with a stable code; the exception filter turns it into `{statusCode, code, message}`. */
export class ApiError extends HttpException {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super({ statusCode, code, message } satisfies ErrorBody, statusCode);
  }

  body(): ErrorBody {
    return { statusCode: this.statusCode, code: this.code, message: this.message };
  }
}

/** An answer whose body is sent as it is (a Terminus health report), not as an error body. */
export class PassthroughException extends HttpException {}
