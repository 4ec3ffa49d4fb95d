import { resolve } from 'node:path';

/**
 * The project's root (package.json, dist/, client/dist). This file sits at the top of src/
 * (ts-jest) and of dist/ (tsc's output), and the bundle that embeds it is dist/service.js: from
 * each, the root is one folder up. Files found from it stay found whichever of the three runs.
 */
export const PACKAGE_ROOT = resolve(__dirname, '..');
