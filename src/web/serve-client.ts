import { existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { ServerResponse } from 'node:http';

/** `client/dist` at the repository root, from src/web (ts-jest) and from dist/web (node) alike. */
export const DEFAULT_CLIENT_DIR = resolve(__dirname, '..', '..', 'client', 'dist');

export const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Cached, but revalidated (ETag) on every use: a deploy shows at the next load. */
export const REVALIDATE = 'no-cache';

/** Vite puts content-hashed files under assets/; everything else (index.html, favicon) may change in place. */
export function cacheControlFor(filePath: string, clientDir: string): string {
  return filePath.startsWith(join(clientDir, 'assets') + sep) ? IMMUTABLE : REVALIDATE;
}

/**
 * Serves the built web client at `/` when it exists. express.static answers only GET and HEAD
 * for files that exist and passes everything else through, so API routes are unaffected; without
 * a build, `/` is the usual JSON 404. Returns whether the client is served.
 */
export function serveClient(app: NestExpressApplication, clientDir: string = DEFAULT_CLIENT_DIR): boolean {
  if (!existsSync(join(clientDir, 'index.html'))) return false;
  app.useStaticAssets(clientDir, {
    index: 'index.html',
    redirect: false,
    dotfiles: 'ignore',
    setHeaders: (res: ServerResponse, filePath: string) => res.setHeader('Cache-Control', cacheControlFor(filePath, clientDir)),
  });
  return true;
}
