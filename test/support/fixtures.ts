import { existsSync, readFileSync } from 'fs';
import path from 'path';

/**
 * The project's own copies of the upstream response shapes (test/fixtures/upstream/, described in
 * its README.md). Read only from inside the repository: a fresh clone has everything its tests need.
 */
export const UPSTREAM_FIXTURES = path.join(repositoryRoot(), 'test', 'fixtures', 'upstream');

/**
 * The repository's root: the nearest folder up from here with a package.json. This file also
 * runs compiled into bench/dist/test/support (the bench's fake push server), one level deeper.
 */
function repositoryRoot(): string {
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'test', 'fixtures', 'upstream'))) return dir;
  }
  throw new Error(`no repository with test/fixtures/upstream above ${__dirname}`);
}

export function readFixture(name: string): string {
  return readFileSync(path.join(UPSTREAM_FIXTURES, name), 'utf8');
}

export function fixtureJson(name: string): unknown {
  return JSON.parse(readFixture(name)) as unknown;
}
