import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { normalizePair } from '../domain/pair';
import { STREAM_PATHS } from '../http/edge-routes';
import { LEGACY_PAIR } from '../shared/wire';
import { bearerToken } from './credentials';
import { StreamAuth } from './stream-auth';

/** Routes under /api/ that keep their own protection (ADMIN_TOKEN) or are streams (their own check). */
const OWN_PROTECTION = /^\/api\/(admin\/|v1\/ltp\/refresh$)/;

/** Every pair named in a comma-separated list (bad names are the route's to refuse). */
const named = (list: string | null): string[] =>
  (list ?? '')
    .split(',')
    .map((p) => normalizePair(p))
    .filter((p): p is string => p !== null);

/**
 * The pairs a REST request under /api/ reads, which its token must grant: the pair of its path,
 * the pairs of its query, or every configured pair for a route that names none (`/api/pairs`,
 * `/api/prices` without `pairs`, `/api/v1/ltp/cached`). null: a request that needs no subscriber
 * token (outside /api/, admin routes, streams).
 */
export function restPairs(path: string, query: URLSearchParams, configured: readonly string[]): string[] | null {
  if (!path.startsWith('/api/') || OWN_PROTECTION.test(path) || STREAM_PATHS.has(path)) return null;
  if (path.startsWith('/api/price/')) return [LEGACY_PAIR];
  const one = /^\/api\/prices\/([^/]+)/.exec(path);
  if (one) {
    let segment = one[1];
    try {
      segment = decodeURIComponent(segment);
    } catch {
      return [];
    }
    const pair = normalizePair(segment);
    return pair === null ? [] : [pair];
  }
  const list = path === '/api/prices' ? named(query.get('pairs')) : path === '/api/v1/ltp' ? named(query.get('pair')) : [];
  return list.length > 0 ? list : [...configured];
}

/** Requests already checked by the edge router (a fast route it then left to Express is not checked twice). */
const checked = new WeakSet<IncomingMessage>();

/**
 * AUTH_REQUIRED=all: a REST request under /api/ needs `Authorization: Bearer <token>` (401) whose
 * `pairs` grant what it reads (403 PAIR_NOT_ENTITLED). The probes, /metrics, the docs and the
 * web client never need one. The edge router runs it before its fast routes, RestAuthGuard before
 * the controllers'.
 */
export async function checkRest(auth: StreamAuth, req: IncomingMessage & { originalUrl?: string }): Promise<void> {
  if (!auth.restRequired || checked.has(req)) return;
  const url = new URL(req.originalUrl ?? req.url ?? '/', 'http://localhost');
  const pairs = restPairs(url.pathname, url.searchParams, auth.pairs);
  if (pairs === null) return;
  const grant = await auth.authorize('rest', bearerToken(req.headers));
  auth.checkPairs(grant, pairs);
  checked.add(req);
}

/** checkRest for the routes Express serves (a global guard beside the rate limit's). */
@Injectable()
export class RestAuthGuard implements CanActivate {
  constructor(private readonly auth: StreamAuth) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.auth.restRequired || context.getType() !== 'http') return true;
    await checkRest(this.auth, context.switchToHttp().getRequest<IncomingMessage>());
    return true;
  }
}
