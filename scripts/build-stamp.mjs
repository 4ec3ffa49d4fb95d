#!/usr/bin/env node
// @ts-check
/**
 * Lets `npm start` and `npm test` skip `npm run build` when nothing it reads changed.
 *
 *   node scripts/build-stamp.mjs begin   (prebuild)  drops the stamp, notes the inputs' hash
 *   node scripts/build-stamp.mjs end     (postbuild) writes the stamp: that hash and the outputs
 *   node scripts/build-stamp.mjs check   exit 0 when the stamp matches the tree, 1 otherwise
 *
 * Inputs: the content (not the times) of every file of the project except the outputs, the tests,
 * the docs, CI, deployment, Markdown and profiles, package.json and package-lock.json included. Outputs:
 * every `dist` / `dist-*` folder, by path, size and modification time, so that a deleted or
 * hand-edited output also rebuilds. The stamp lives in node_modules/.cache, so a fresh install
 * rebuilds too. The hash is taken before the build starts: a file edited during it rebuilds next
 * time. A failed build leaves no stamp.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const root = process.cwd();
const cacheDir = join(root, 'node_modules', '.cache', 'price-stream-build');
const stampFile = join(cacheDir, 'stamp.json');
const pendingFile = join(cacheDir, 'pending.json');

/** Never inputs, at any depth. */
const SKIP_ANYWHERE = new Set(['node_modules', '.git', 'coverage']);
/** Never inputs: top-level folders the build does not read, and the bench's own results. */
const SKIP_PATHS = new Set(['docs', '.ci', 'deploy', join('bench', 'results')]);
/** Of test/, the build reads only test/support (the bench compiles its fakes from there). */
const TEST_INPUTS = [join('test', 'support')];
const outsideTestInputs = (rel) => rel.startsWith(`test${sep}`) && !TEST_INPUTS.some((t) => rel === t || rel.startsWith(t + sep));
const isOutputDir = (name) => name === 'dist' || name.startsWith('dist-');
/** Never inputs: Markdown, and the profiles a bench run may leave (large, and no build reads them). */
const isSkippedFile = (name) => /\.(md|cpuprofile|heapsnapshot)$/.test(name);

/** Files under dir (relative to root, sorted), without the skipped folders; outputDirs collects the output folders met. */
function walk(dir, files, outputDirs) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = join(dir, entry.name);
    const rel = relative(root, full);
    if (outsideTestInputs(rel)) continue;
    if (entry.isDirectory()) {
      if (SKIP_ANYWHERE.has(entry.name) || SKIP_PATHS.has(rel)) continue;
      if (isOutputDir(entry.name)) outputDirs.push(full);
      else walk(full, files, outputDirs);
    } else if (entry.isFile() && !isSkippedFile(entry.name)) files.push(full);
  }
}

function listOutputs(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) listOutputs(full, out);
    else {
      const s = statSync(full);
      out.push(`${relative(root, full).split(sep).join('/')} ${s.size} ${s.mtimeMs}`);
    }
  }
}

function scan() {
  /** @type {string[]} */ const files = [];
  /** @type {string[]} */ const outputDirs = [];
  walk(root, files, outputDirs);
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${relative(root, f).split(sep).join('/')}\0`).update(readFileSync(f)).update('\0');
  /** @type {string[]} */ const outputs = [];
  for (const d of outputDirs) listOutputs(d, outputs);
  return { inputs: hash.digest('hex'), outputs: createHash('sha256').update(outputs.join('\n')).digest('hex'), outputCount: outputs.length };
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

const command = process.argv[2];
if (command === 'begin') {
  rmSync(stampFile, { force: true });
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(pendingFile, JSON.stringify({ inputs: scan().inputs }));
} else if (command === 'end') {
  const pending = readJson(pendingFile);
  if (pending === undefined) process.exit(0); // a build started without `begin`: no stamp, the next start rebuilds
  const { outputs, outputCount } = scan();
  if (outputCount > 0) writeFileSync(stampFile, JSON.stringify({ inputs: pending.inputs, outputs }));
  rmSync(pendingFile, { force: true });
} else if (command === 'check') {
  const stamp = existsSync(stampFile) ? readJson(stampFile) : undefined;
  const now = scan();
  const upToDate = stamp !== undefined && stamp.inputs === now.inputs && stamp.outputs === now.outputs;
  process.stderr.write(upToDate ? 'build is up to date with the sources: skipped (npm run build forces it)\n' : '');
  process.exit(upToDate ? 0 : 1);
} else {
  process.stderr.write('usage: node scripts/build-stamp.mjs begin|end|check\n');
  process.exit(2);
}
