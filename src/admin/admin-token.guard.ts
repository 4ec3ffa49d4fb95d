import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { ApiError } from '../http/api-error';
import { AppConfig } from '../config/app-config';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Admin routes exist only when ADMIN_TOKEN is set (404 otherwise) and need
 * `Authorization: Bearer <ADMIN_TOKEN>`. Digests make the comparison constant-time whatever
 * the lengths.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(config: AppConfig) {
    this.expected = config.adminToken ? digest(config.adminToken) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    if (!this.expected) throw new ApiError(404, 'NOT_FOUND', `Cannot ${req.method} ${req.path}`);
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!match || !timingSafeEqual(digest(match[1]), this.expected)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'a valid admin bearer token is required');
    }
    return true;
  }
}
