import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';

const PREFIX = 'price-stream-bundle-';
/** Where the bundle's copy of compile-cache.ts finds what writes the cache (`flushCompileCache`). */
export const CODE_CACHE_WRITER = Symbol.for('price-stream.bundle-code-cache');

/** What a start found: the cache used, none yet, or one V8 refused (made by other flags); for tests. */
export type CodeCacheUse = 'used' | 'none' | 'rejected' | 'off';

type CacheModule = typeof nodeModule & { getCompileCacheDir?: () => string | undefined };
type CjsModule = nodeModule & { filename: string; paths: string[]; loaded: boolean; exports: unknown };
type ModuleClass = { new (id: string, parent?: unknown): CjsModule; wrap(code: string): string; _nodeModulePaths(dir: string): string[] };

/**
 * Runs the service's bundle (dist/service.js, one CommonJS file: scripts/bundle.mjs) with V8's
 * code cache of everything its start compiled.
 *
 * Node's compile cache (compile-cache.ts) keeps a file's code as compiled when it is loaded,
 * before it runs. V8 compiles a function's body the first time it is called, and in the bundle
 * nearly all code is such a body (each module is a function, run on its first require): those
 * were compiled again at every start, ~a tenth of its CPU. Here the cache is taken after the
 * start (`Script.createCachedData` when the service calls `flushCompileCache`, once it listens;
 * only when the cache was missing or V8 refused it), so that the next start reads them all
 * compiled: spawn to serving 491–528 ms against 568–569 ms here (docs/benchmarks.md, "Issue 26,
 * tenth round").
 *
 * The cache file sits in Node's compile-cache directory (NODE_COMPILE_CACHE, or the one under
 * the system's temporary directory; one per Node version), named by a hash of the bundle's text
 * and the platform: a new build starts without it and writes its own (V8 also refuses a cache
 * made with other flags). It is written to a temporary name and renamed, so processes writing
 * at once (workers) never read half a file. As Node's own entries, an older build's cache stays
 * until the directory is cleared (~4 MiB).
 * Without a compile-cache directory (NODE_DISABLE_COMPILE_CACHE=1, nowhere to write), with
 * `--enable-source-maps` (Node maps stack traces only for what its own loader compiled), or for a
 * file that is not a built bundle, the file is required as any module.
 */
export function loadBundle(file: string): CodeCacheUse {
  const dir = (nodeModule as CacheModule).getCompileCacheDir?.();
  // Node maps stack traces back to src/ (`--enable-source-maps`) only for what its loader compiled.
  if (!dir || !file.endsWith('.js') || process.sourceMapsEnabled) {
    nodeModule.createRequire(__filename)(file);
    return 'off';
  }
  const source = readFileSync(file, 'utf8');
  const key = createHash('sha256').update(`${process.version} ${process.platform} ${process.arch}\n`).update(source).digest('hex').slice(0, 32);
  const cacheFile = path.join(dir, `${PREFIX}${key}`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const Module = nodeModule.Module as unknown as ModuleClass;
  const script = new Script(Module.wrap(source), { filename: file, cachedData });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  require.cache[file] = mod as unknown as NodeJS.Module;
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  run.call(mod.exports, mod.exports, nodeModule.createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  const use = cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'used';
  if (use !== 'used') {
    const writers = globalThis as Record<symbol, (() => void) | undefined>;
    writers[CODE_CACHE_WRITER] = () => {
      writers[CODE_CACHE_WRITER] = undefined;
      writeCache(script, cacheFile);
    };
  }
  return use;
}

function writeCache(script: Script, cacheFile: string): void {
  try {
    const temporary = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
    renameSync(temporary, cacheFile);
  } catch {
    // A cache is only a faster start: without one (a read-only or full disk) the next start compiles as this one did.
  }
}
