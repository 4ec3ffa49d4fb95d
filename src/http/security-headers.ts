import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { STREAM_PATHS } from './edge-routes';

/**
 * helmet's headers with a Content-Security-Policy the web client works under (its own scripts
 * and styles, streams to the same origin); none on the SSE streams. The OpenAPI UI needs inline
 * styles and images.
 */
export const strictSecurityHeaders = helmet({
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'", 'ws:', 'wss:'],
      objectSrc: ["'none'"],
      frameAncestors: ["'none'"],
      baseUri: ["'self'"],
      // Served over plain HTTP in development; TLS is the proxy's business.
      upgradeInsecureRequests: null,
    },
  },
});

/**
 * strictSecurityHeaders' headers as a list (name, value, …), for answers written with one
 * `writeHead` (fast-rest.ts). Recorded once through the middleware itself: with these options
 * helmet's headers depend on no request (no nonce or other function directive). Its other act,
 * removing X-Powered-By, has nothing to remove there.
 */
export const STRICT_SECURITY_HEADERS: readonly string[] = recordHeaders(strictSecurityHeaders);

function recordHeaders(middleware: typeof strictSecurityHeaders): string[] {
  const headers: string[] = [];
  let done = false;
  const res = { setHeader: (name: string, value: unknown) => headers.push(name, String(value)), removeHeader: () => undefined };
  middleware({} as Request, res as unknown as Response, (err?: unknown) => (done = err === undefined));
  if (!done) throw new Error('helmet did not pass its headers synchronously');
  return headers;
}

/** helmet's headers for every HTTP answer but the SSE streams; the OpenAPI UI gets its own CSP. */
export function securityHeaders() {
  const docs = helmet({
    contentSecurityPolicy: {
      directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'", "'unsafe-inline'"], styleSrc: ["'self'", "'unsafe-inline'"], imgSrc: ["'self'", 'data:'], upgradeInsecureRequests: null },
    },
  });
  // An event stream is never rendered, framed or sniffed: the document headers would only cost
  // each long-lived stream their ~1.5 KB of retained header state, so streams go without.
  return (req: Request, res: Response, next: NextFunction) => {
    if (STREAM_PATHS.has(req.path)) next();
    else (req.path.startsWith('/docs') ? docs : strictSecurityHeaders)(req, res, next);
  };
}

