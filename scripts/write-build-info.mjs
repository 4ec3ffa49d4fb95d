// Writes dist/build-info.json with the git revision of this build (`price_stream_build_info`'s
// `revision` label): GIT_REVISION or SOURCE_COMMIT when set, else `git rev-parse HEAD` (with
// `-dirty` when the work tree has changes), else "unknown" (no git, or not a clone: the image's
// build context has no .git, so the Dockerfile passes GIT_REVISION as a build argument).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

function revision() {
  const fromEnv = (process.env.GIT_REVISION ?? process.env.SOURCE_COMMIT ?? '').trim();
  if (fromEnv) return fromEnv;
  try {
    const head = git('rev-parse', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'build-info.json'), JSON.stringify({ revision: revision() }) + '\n');
