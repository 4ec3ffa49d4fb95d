/**
 * The process' entry (`node dist/main.js`). Node's compile cache is turned on first, then the
 * service is loaded: dist/service.js, which `npm run build` bundles with everything it imports
 * into one file (scripts/bundle.mjs), so that a start reads one file instead of resolving,
 * reading and compiling some 1,500 modules one by one. The cache must be on before that file is
 * compiled, so it cannot be turned on from inside it; the bundle itself is run with V8's code
 * cache of its start (bundle-loader.ts).
 */
import './compile-cache';
import { loadBundle } from './bundle-loader';

loadBundle(require.resolve('./service'));
