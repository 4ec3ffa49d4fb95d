import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What `app.enableCors` (the cors package, an origin list) does for a simple GET, for the routes
 * served ahead of Express (edge-router.ts): the origin echoed when CORS_ORIGINS lists it, and
 * (as the cors package does whatever the origin) `Vary` and the exposed headers.
 */
export function simpleCors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): void {
  if (allowed.length === 0) return;
  const origin = req.headers.origin;
  if (origin && allowed.includes(origin)) res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id,Retry-After');
}
