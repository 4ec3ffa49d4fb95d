import { existsSync, readFileSync } from 'fs';
import path from 'path';

/**
 * The upstream response shapes every developer and CI have in `shared/` beside the repository
 * (see shared/README.md). Looked up from the repository's parent upwards, so that a git
 * worktree nested one level deeper (e.g. `wt/<branch>`) finds the same folder.
 */
function locateFixtures(): string {
  const repoRoot = path.resolve(__dirname, '../..');
  for (let dir = repoRoot; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const candidate = path.join(path.dirname(dir), 'shared', 'fixtures', 'upstream');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`shared/fixtures/upstream not found beside ${repoRoot} or any folder above it`);
}

export const UPSTREAM_FIXTURES = locateFixtures();

export function readFixture(name: string): string {
  return readFileSync(path.join(UPSTREAM_FIXTURES, name), 'utf8');
}

export function fixtureJson(name: string): unknown {
  return JSON.parse(readFixture(name)) as unknown;
}
