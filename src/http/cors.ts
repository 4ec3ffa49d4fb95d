import type { StreamRequest, StreamResponse } from './socket-response';

type WithHeaders = Pick<StreamRequest, 'headers'>;

/**
 * What `app.enableCors` (the cors package, an origin list) does for a simple GET, for the routes
 * served ahead of Express (edge-router.ts): the origin echoed when CORS_ORIGINS lists it, and
 * (as the cors package does whatever the origin) `Vary` and the exposed headers.
 */
export function simpleCors(req: WithHeaders, res: Pick<StreamResponse, 'setHeader'>, allowed: readonly string[]): void {
  const headers: string[] = [];
  corsHeaders(req, allowed, headers);
  for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i], headers[i + 1]);
}

/** The same headers, appended to a header list (name, value, name, value, …). */
export function corsHeaders(req: WithHeaders, allowed: readonly string[], headers: string[]): void {
  if (allowed.length === 0) return;
  const origin = req.headers.origin;
  if (origin && allowed.includes(origin)) headers.push('Access-Control-Allow-Origin', origin);
  headers.push('Vary', 'Origin', 'Access-Control-Expose-Headers', 'X-Request-Id,Retry-After');
}
