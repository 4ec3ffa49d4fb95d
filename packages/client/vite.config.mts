import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * The client library alone (`client/src/sdk`), as one ES module for programs and other apps:
 * `client/dist-sdk/price-stream.mjs`. socket.io-client stays an import (the app that uses the
 * library brings it); the wire types come from the source.
 */
export default defineConfig({
  root,
  publicDir: false,
  build: {
    outDir: 'dist-sdk',
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    lib: { entry: 'src/sdk/index.ts', formats: ['es'], fileName: () => 'price-stream.mjs' },
    rollupOptions: { external: ['socket.io-client'] },
  },
});
