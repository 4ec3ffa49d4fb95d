import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const DIST = path.resolve(__dirname, '..', 'dist');

/**
 * dist/bundle-loader.js (`npm run build` makes it) on a small CommonJS file, in a child process
 * of its own with Node's compile cache in a temporary folder, as dist/main.js runs the bundle.
 */
describe('the bundle loader (V8 code cache of a start)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bundle-loader-'));
    file = path.join(dir, 'bundle.js');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const BUNDLE = (n: number) => `"use strict";
const lazy = { "mod.js"(exports) { exports.twice = (x) => x * 2; } };
const mod = { exports: {} };
lazy["mod.js"](mod.exports);
exports.answer = mod.exports.twice(${n});
exports.filename = __filename;
exports.required = typeof require("node:path").join;
`;

  /** One start: what the loader found, what the file exported, and the bundle caches in the folder after the flush. */
  function start(env: Record<string, string> = {}): { use: string; answer: number; filename: string; required: string; loaded: boolean; caches: string[] } {
    expect(existsSync(path.join(DIST, 'bundle-loader.js'))).toBe(true);
    const script = `
      const m = require('node:module');
      m.enableCompileCache(${JSON.stringify(path.join(dir, 'cache'))});
      const use = require(${JSON.stringify(path.join(DIST, 'bundle-loader.js'))}).loadBundle(${JSON.stringify(file)});
      const mod = require.cache[${JSON.stringify(file)}];
      // What flushCompileCache does once the service listens, without its delay.
      globalThis[Symbol.for('price-stream.bundle-code-cache')]?.(0);
      const cacheDir = m.getCompileCacheDir();
      const caches = cacheDir ? require('node:fs').readdirSync(cacheDir).filter((n) => n.startsWith('price-stream-bundle-')) : [];
      process.stdout.write(JSON.stringify({ use, ...mod.exports, loaded: mod.loaded, caches }));`;
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' })) as ReturnType<typeof start>;
  }

  it("finds no import() in the built bundle (a script run outside Node's loader has no loader for it)", () => {
    const bundle = readFileSync(path.join(DIST, 'service.js'), 'utf8');
    expect(bundle.length).toBeGreaterThan(1_000_000);
    expect(bundle.match(/[^\w$.]import\(/g)).toBeNull();
    expect(bundle).toContain('require("@nestjs/microservices")');
  });

  it('writes the cache after a start that found none, and the next start uses it; a new build of the file replaces it', () => {
    writeFileSync(file, BUNDLE(21));
    const first = start();
    expect(first).toEqual({ use: 'none', answer: 42, filename: file, required: 'function', loaded: true, caches: [expect.stringMatching(/^price-stream-bundle-[0-9a-f]{8}$/)] });
    expect(start()).toEqual({ ...first, use: 'used' });
    writeFileSync(file, BUNDLE(50));
    expect(start()).toMatchObject({ use: 'none', answer: 100, caches: first.caches });
    expect(start()).toMatchObject({ use: 'used', answer: 100, caches: first.caches });
  });

  it('never hands V8 a damaged cache: it runs the bundle compiled afresh and writes the cache again', () => {
    writeFileSync(file, BUNDLE(21));
    const [cache] = start().caches;
    const cachePath = path.join(dir, 'cache', readdirSync(path.join(dir, 'cache'))[0]!, cache!);
    const whole = readFileSync(cachePath);
    // A flipped byte in V8's data (the head still names this bundle), then a file of garbage.
    const flipped = Buffer.from(whole);
    flipped[flipped.length - 1] ^= 0xff;
    for (const damaged of [flipped, Buffer.alloc(4096, 7)]) {
      writeFileSync(cachePath, damaged);
      expect(start()).toMatchObject({ use: 'rejected', answer: 42 });
      expect(start()).toMatchObject({ use: 'used', answer: 42 });
    }
  });

  it('requires the file as any module when the compile cache is off, or with source maps on (stack traces lead back to src/)', () => {
    writeFileSync(file, BUNDLE(21));
    const off = { use: 'off', answer: 42, filename: file, required: 'function', loaded: true, caches: [] };
    expect(start({ NODE_DISABLE_COMPILE_CACHE: '1' })).toEqual(off);
    expect(start({ NODE_OPTIONS: '--enable-source-maps' })).toEqual(off);
  });
});
