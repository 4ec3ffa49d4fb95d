import { readFileSync } from 'fs';
import path from 'path';

/**
 * The project's own copies of the upstream response shapes (test/fixtures/upstream/, described in
 * its README.md). Read only from inside the repository: a fresh clone has everything its tests need.
 */
export const UPSTREAM_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'upstream');

export function readFixture(name: string): string {
  return readFileSync(path.join(UPSTREAM_FIXTURES, name), 'utf8');
}

export function fixtureJson(name: string): unknown {
  return JSON.parse(readFixture(name)) as unknown;
}
