import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root';

/** Written by `node scripts/write-build-info.mjs` at build time: the git revision the build came from. */
export const BUILD_INFO_FILE = 'build-info.json';

export type BuildInfo = { version: string; node_version: string; revision: string };

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * The labels of `price_stream_build_info`: the package's version, the running Node's, and the git
 * revision: GIT_REVISION or SOURCE_COMMIT when set (an image's build argument, a platform's
 * variable), else the one `npm run build` wrote into dist/build-info.json, else `unknown`.
 * `distDir` is the build's root (dist/), `packageDir` the project's.
 */
export function buildInfo(env: NodeJS.ProcessEnv = process.env, distDir = join(PACKAGE_ROOT, 'dist'), packageDir = join(distDir, '..')): BuildInfo {
  const fromEnv = (env.GIT_REVISION ?? env.SOURCE_COMMIT ?? '').trim();
  const written = readJson(join(distDir, BUILD_INFO_FILE))?.revision;
  const version = readJson(join(packageDir, 'package.json'))?.version;
  return {
    version: typeof version === 'string' ? version : 'unknown',
    node_version: process.version,
    revision: fromEnv || (typeof written === 'string' && written ? written : 'unknown'),
  };
}
