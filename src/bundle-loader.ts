import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';
import { crc32 } from 'node:zlib';
import { CODE_CACHE_WRITER, type CodeCacheWriters } from './compile-cache';

/**
 * How long after the service listens the cache is taken: it holds the event loop ~90 ms (V8
 * serialises ~4 MiB), which would fall on the first joins of a new build's first start (a
 * rolling deploy's reconnects); later, the start's functions are still all there.
 */
export const CODE_CACHE_WRITE_DELAY_MS = 5_000;

/**
 * What a start found: the cache used; none for this bundle yet; one that failed its checksum or
 * that V8 refused (made with other flags); or the cache off (the file required as any module).
 */
export type CodeCacheUse = 'used' | 'none' | 'rejected' | 'off';

/** The cache file's head: a tag, the CRC-32 of the bundle's text it was made from, the CRC-32 of V8's data after it. */
const MAGIC = 0x50534331; // "PSC1"
const HEAD_BYTES = 12;

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
 * start (`Script.createCachedData`, CODE_CACHE_WRITE_DELAY_MS after the service calls
 * `flushCompileCache` once it listens; only when the cache was missing or unusable), so that the
 * next start reads them all compiled: spawn to serving 501–510 ms against 547–574 ms here
 * (docs/benchmarks.md, "Issue 26, tenth round").
 *
 * One file per bundle path in Node's compile-cache directory (NODE_COMPILE_CACHE, or the one
 * under the system's temporary directory; one per Node version), which a new build overwrites.
 * Its head names the bundle's text it was made from and checks V8's data (CRC-32 each: V8 itself
 * checks only the text's length and its own version and flags), so a stale or damaged file is
 * never handed to V8; it is written to a temporary name and renamed, so processes writing at
 * once (workers) never read half a file. Without a compile-cache directory
 * (NODE_DISABLE_COMPILE_CACHE=1, nowhere to write), with `--enable-source-maps` (Node maps
 * stack traces only for what its own loader compiled), or for a file that is not a built
 * bundle, the file is required as any module. The bundle has no `import()` (scripts/bundle.mjs
 * makes them `require`s): a script run here has no module loader for it.
 */
export function loadBundle(file: string): CodeCacheUse {
  const dir = (nodeModule as CacheModule).getCompileCacheDir?.();
  if (!dir || !file.endsWith('.js') || process.sourceMapsEnabled) {
    nodeModule.createRequire(__filename)(file);
    return 'off';
  }
  const bytes = readFileSync(file);
  const sourceCrc = crc32(bytes);
  const source = bytes.toString('utf8');
  const cacheFile = path.join(dir, `price-stream-bundle-${crc32(file).toString(16).padStart(8, '0')}`);
  const found = readCache(cacheFile, sourceCrc);
  const Module = nodeModule.Module as unknown as ModuleClass;
  const script = new Script(Module.wrap(source), {
    filename: file,
    cachedData: found === 'none' || found === 'rejected' ? undefined : found,
  });
  const use: CodeCacheUse = typeof found === 'string' ? found : script.cachedDataRejected === true ? 'rejected' : 'used';
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  require.cache[file] = mod as unknown as NodeJS.Module;
  try {
    const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
    run.call(mod.exports, mod.exports, nodeModule.createRequire(file), mod, file, path.dirname(file));
  } catch (err) {
    delete require.cache[file];
    throw err;
  }
  mod.loaded = true;
  if (use !== 'used') {
    const writers = globalThis as CodeCacheWriters;
    writers[CODE_CACHE_WRITER] = (delayMs = CODE_CACHE_WRITE_DELAY_MS) => {
      writers[CODE_CACHE_WRITER] = undefined;
      const write = () => writeCache(script, cacheFile, sourceCrc);
      if (delayMs > 0) setTimeout(write, delayMs).unref();
      else write();
    };
  }
  return use;
}

/** V8's data from the cache file when it was made from this text and is whole; else why not. */
function readCache(cacheFile: string, sourceCrc: number): Buffer | 'none' | 'rejected' {
  let bytes: Buffer;
  try {
    bytes = readFileSync(cacheFile);
  } catch {
    return 'none';
  }
  if (bytes.length < HEAD_BYTES || bytes.readUInt32BE(0) !== MAGIC) return 'rejected';
  if (bytes.readUInt32BE(4) !== sourceCrc) return 'none'; // another build's
  const data = bytes.subarray(HEAD_BYTES);
  return crc32(data) === bytes.readUInt32BE(8) ? data : 'rejected';
}

function writeCache(script: Script, cacheFile: string, sourceCrc: number): void {
  const temporary = `${cacheFile}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const data = script.createCachedData();
    const head = Buffer.alloc(HEAD_BYTES);
    head.writeUInt32BE(MAGIC, 0);
    head.writeUInt32BE(sourceCrc, 4);
    head.writeUInt32BE(crc32(data), 8);
    writeFileSync(temporary, Buffer.concat([head, data]), { mode: 0o600, flag: 'wx' });
    renameSync(temporary, cacheFile);
  } catch {
    // A cache is only a faster start: without one (a read-only or full disk) the next start compiles as this one did.
    rmSync(temporary, { force: true });
  }
}
