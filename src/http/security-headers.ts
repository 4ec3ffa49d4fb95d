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

