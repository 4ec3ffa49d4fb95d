import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * The package's code: one ES module, `dist/index.js` (its declarations, `dist/index.d.ts`, come
 * from dts-bundle-generator). The wire contract (src/shared/wire.ts) is bundled in;
 * socket.io-client stays an import, loaded only by the Socket.IO transport.
 */
export default defineConfig({
  root,
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    lib: { entry: 'src/index.ts', formats: ['es'], fileName: () => 'index.js' },
    rollupOptions: { external: ['socket.io-client'] },
  },
});
