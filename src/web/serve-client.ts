import { existsSync, readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, relative, resolve, sep } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import serveStatic from 'serve-static';
import { PACKAGE_ROOT } from '../package-root';

/** `client/dist` at the repository root. */
export const DEFAULT_CLIENT_DIR = resolve(PACKAGE_ROOT, 'client', 'dist');

export const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Cached, but revalidated (ETag) on every use: a deploy shows at the next load. */
export const REVALIDATE = 'no-cache';

/** Vite puts content-hashed files under assets/; everything else (index.html, favicon) may change in place. */
export function cacheControlFor(filePath: string, clientDir: string): string {
  return filePath.startsWith(join(clientDir, 'assets') + sep) ? IMMUTABLE : REVALIDATE;
}

/** The URL paths of the files a client build holds (`/` for index.html), read once: a build does not change under a running service. */
export function clientPaths(clientDir: string): Set<string> {
  const paths = new Set<string>(['/']);
  for (const entry of readdirSync(clientDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    paths.add('/' + relative(clientDir, join(entry.parentPath, entry.name)).split(sep).join('/'));
  }
  return paths;
}

/**
 * Serves the built web client at `/` when it exists; without a build, `/` is the usual JSON 404.
 * Only the build's own files reach the static handler (GET and HEAD): every other request, the
 * API and the streams above all, passes straight on, without a file-system lookup each.
 * Returns whether the client is served.
 */
export function serveClient(app: NestExpressApplication, clientDir: string = DEFAULT_CLIENT_DIR): boolean {
  if (!existsSync(join(clientDir, 'index.html'))) return false;
  const files = clientPaths(clientDir);
  const serve = serveStatic(clientDir, {
    index: 'index.html',
    redirect: false,
    dotfiles: 'ignore',
    setHeaders: (res: ServerResponse, filePath: string) => res.setHeader('Cache-Control', cacheControlFor(filePath, clientDir)),
  });
  app.use((req: IncomingMessage & { path: string }, res: ServerResponse, next: (err?: unknown) => void) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && files.has(req.path)) serve(req, res, next);
    else next();
  });
  return true;
}
