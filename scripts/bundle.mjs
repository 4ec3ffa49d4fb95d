// @ts-check
/**
 * Bundles the service (tsc's dist/service.js and everything it imports, node_modules included)
 * into one file, dist/service.js, in place; dist/main.js (the entry) loads it once Node's compile
 * cache is on. Run by `npm run build` and the Dockerfile after `nest build`.
 *
 * Why: a start's CPU is mostly Node's module loader, per module: resolving each specifier
 * (several file-system lookups), reading the file, compiling it. The service loads some 1,500
 * modules (Nest, rxjs, socket.io, ioredis, zod, ...); one file does away with the per-module
 * part. A start is what a restarted process' subscribers wait for (docs/benchmarks.md, "Issue
 * 26, seventh round").
 *
 * Left out of the bundle, loaded from node_modules when asked for:
 * - `@nestjs/swagger`: only on the first request for the OpenAPI document (src/http/api-docs.ts),
 *   and swagger-ui-dist finds its files from its own folder;
 * - `pino` (and its transports): LOG_FORMAT=pretty runs pino-pretty in a worker thread whose file
 *   pino finds from its own folder;
 * - the optional peers Nest requires only when a feature is used (microservices, class-validator
 *   and class-transformer for its validation pipe, Fastify): not installed, never asked for.
 *
 * Each module keeps its code, its order of evaluation (on first require, as before) and its class
 * names (`keepNames`: Nest names providers and modules by them). The ES modules among the
 * dependencies (Nest's) become CommonJS; `import.meta.url` in them is the bundle's own URL, from
 * which `createRequire` resolves the external packages as node_modules would. A source map
 * (dist/service.js.map) leads back to src/: `NODE_OPTIONS=--enable-source-maps` for stack traces
 * with TypeScript lines.
 */
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const service = join(root, 'dist', 'service.js');

const EXTERNAL = [
  '@nestjs/swagger',
  'pino',
  'pino-pretty',
  '@nestjs/microservices',
  '@nestjs/microservices/*',
  '@nestjs/platform-fastify',
  '@fastify/static',
  'class-transformer',
  'class-transformer/*',
  'class-validator',
];

/**
 * zod's namespace (`z.locales`, `z.core.locales`) requires every one of its ~60 locales on load,
 * and a start ran them all (a start's CPU is ~10 ms less without them, 386 against 396 ms:
 * docs/benchmarks.md, "Issue 26, ninth round"). The service's messages are zod's English ones,
 * which zod's schemas set from `en` itself: in the bundle the locales' index has `en` only.
 */
const ZOD_LOCALES = /^\.\.\/locales\/index\.c?js$/;
/** @type {import('esbuild').Plugin} */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: ZOD_LOCALES }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: join(dirname(args.importer), '..', 'locales', 'index-en-only.cjs'), namespace: 'zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: 'const en = require("./en.cjs");\nexports.en = en.__esModule ? en.default : en;\n',
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

// `keepNames` wraps every function and class whose name a binding gives it in esbuild's `__name`,
// which redefines the name as a property. On a closure made per connection (a listener, an arrow
// in a class field) that property costs memory and time on every connection: +7 KiB per
// connection at full size (docs/benchmarks.md, "Issue 26, seventh round"). The names Nest and
// the logs read are those of classes (`new Logger(SseService.name)`, its modules and providers),
// which the bundle renames when two modules declare the same one: those are still set. A
// function that already bears the name, or an arrow function (no `prototype`: never a class,
// its name is only for display), is left as it is. The banner defines it; esbuild's helper is
// pointed at it once the bundle is written (below).
const NAME_CLASSES =
  'function __bundle_name_classes(target, value) { return target.name === value || target.prototype === undefined ? target : Object.defineProperty(target, "name", { value, configurable: true }); }';

const result = await build({
  entryPoints: [service],
  outfile: service,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  keepNames: true,
  external: EXTERNAL,
  banner: { js: `const __bundle_import_meta_url = require("node:url").pathToFileURL(__filename).href;${NAME_CLASSES}` },
  define: { 'import.meta.url': '__bundle_import_meta_url' },
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
  metafile: true,
  plugins: [zodEnglishOnly],
  // Without the indentation, line breaks and comments the file is 4.4 MiB, not 6.5: a start reads
  // and scans less (spawn to serving 581-587 ms against 656-662, docs/benchmarks.md, "Issue 26,
  // tenth round"). Names and code are kept as they are (no `minifyIdentifiers`, no `minifySyntax`);
  // the source map still leads back to src/.
  minifyWhitespace: true,
  // `import()` of a package left out (Nest's optional ones, loaded when a feature is used) becomes
  // a `require` once the promise runs, as tsc writes it for our own code: src/bundle-loader.ts runs
  // the bundle outside Node's loader, where `import()` has no loader to go to.
  supported: { 'dynamic-import': false },
});

// esbuild's own `__name` helper, pointed at __bundle_name_classes (the banner's: see NAME_CLASSES).
const HELPER = 'var __name=(target,value)=>__defProp(target,"name",{value,configurable:true});';
const code = readFileSync(service, 'utf8');
if (code.split(HELPER).length !== 2) throw new Error(`bundle: esbuild's __name helper is not the one expected (${HELPER}); see scripts/bundle.mjs`);
// The same length, so that the source map's columns after it on its line stay right.
writeFileSync(service, code.replace(HELPER, 'var __name=__bundle_name_classes;'.padEnd(HELPER.length, ' ')));

const inputs = Object.keys(result.metafile.inputs).length;
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
process.stdout.write(`bundle: dist/service.js, ${inputs} modules, ${(bytes / 1024 / 1024).toFixed(1)} MiB\n`);
