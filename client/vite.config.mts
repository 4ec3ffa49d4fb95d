import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
// `npm run dev:client` proxies the API to a server started with `npm run start` (PORT 8080).
const api = process.env.API_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root,
  base: '/',
  // The client library from its source (packages/client/src), as in client/tsconfig.json: the
  // web client needs no build of the package first, and the dev server reloads it.
  resolve: { alias: { '@price-stream/client': fileURLToPath(new URL('../packages/client/src/index.ts', import.meta.url)) } },
  publicDir: 'public',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // A small app: one entry chunk, no inline assets (the CSP will be `default-src 'self'`).
    assetsInlineLimit: 0,
  },
  server: {
    // The client imports the wire types from ../src/shared and the library from ../packages.
    fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] },
    proxy: {
      '/api': { target: api, ws: true },
      '/socket.io': { target: api, ws: true },
    },
  },
});
