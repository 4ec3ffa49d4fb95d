import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What `app.enableCors` (the cors package, an origin list) does for a simple GET, for the routes
 * served ahead of Express (SseEntry, LatestEntry): the origin echoed when CORS_ORIGINS lists it.
 */
export function simpleCors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): void {
  if (allowed.length === 0) return;
  res.setHeader('Vary', 'Origin');
  const origin = req.headers.origin;
  if (!origin || !allowed.includes(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id,Retry-After');
}
