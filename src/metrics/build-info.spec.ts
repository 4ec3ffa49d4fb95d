import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInfo, BUILD_INFO_FILE } from './build-info';

/** The projects made here, removed once the tests are done. */
const roots: string[] = [];

function project(revision?: string): string {
  const root = mkdtempSync(join(tmpdir(), 'build-info-'));
  roots.push(root);
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ version: '1.2.3' }));
  if (revision !== undefined) writeFileSync(join(root, 'dist', BUILD_INFO_FILE), JSON.stringify({ revision }));
  return join(root, 'dist');
}

describe(buildInfo.name, () => {
  afterAll(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it('takes the revision from GIT_REVISION, then SOURCE_COMMIT, then the build, then says unknown', () => {
    const built = project('abc123');
    expect(buildInfo({ GIT_REVISION: 'fromenv', SOURCE_COMMIT: 'other' }, built)).toEqual({ version: '1.2.3', node_version: process.version, revision: 'fromenv' });
    expect(buildInfo({ SOURCE_COMMIT: 'commit' }, built).revision).toBe('commit');
    expect(buildInfo({}, built).revision).toBe('abc123');
    expect(buildInfo({}, project())).toEqual({ version: '1.2.3', node_version: process.version, revision: 'unknown' });
  });
});
