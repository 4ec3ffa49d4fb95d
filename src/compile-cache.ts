import * as nodeModule from 'node:module';

/**
 * Node's on-disk compile cache (node:module `enableCompileCache`, Node 22.1+): a start after the
 * first reads the compiled code of every module instead of compiling it again, which is a third
 * of the CPU of a start (most of which is loading modules). It matters most where the start is
 * on the clock: a process restarted after a crash, its subscribers waiting to come back. The
 * directory is NODE_COMPILE_CACHE, else one under the system's temporary directory; where none
 * can be written (a read-only file system) Node says so in the status and starts as before;
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. Imported first by main.ts, before any other module,
 * so before the service's bundle (dist/service.js) is compiled: the bundle's code comes from the
 * cache too. The bundle holds a copy of this module (service.ts imports `flushCompileCache`); its
 * second `enableCompileCache()` finds the cache on and changes nothing.
 */
const cache = nodeModule as typeof nodeModule & { enableCompileCache?: () => unknown; flushCompileCache?: () => void };
cache.enableCompileCache?.();

/**
 * Where bundle-loader.ts puts what writes the bundle's own code cache (given a delay), when its
 * start found none. A global symbol: this module is also in the bundle, and the bundle's copy
 * (which service.ts calls) must find what dist/main.js' copy set.
 */
export const CODE_CACHE_WRITER = Symbol.for('price-stream.bundle-code-cache');
export type CodeCacheWriters = Record<symbol, ((delayMs?: number) => void) | undefined>;

/**
 * Writes what this process compiled so far: a process killed later (SIGKILL) never flushes at
 * exit. The bundle's own code cache too, a few seconds later, when its start found none.
 */
export function flushCompileCache(): void {
  cache.flushCompileCache?.();
  (globalThis as CodeCacheWriters)[CODE_CACHE_WRITER]?.();
}
