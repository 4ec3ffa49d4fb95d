import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheControlFor, clientPaths, IMMUTABLE, REVALIDATE } from './serve-client';

describe('cacheControlFor', () => {
  const dir = join('/srv', 'client', 'dist');

  it('marks hashed files under assets/ immutable for a year', () => {
    expect(cacheControlFor(join(dir, 'assets', 'index-138_uRJj.js'), dir)).toBe(IMMUTABLE);
  });

  it('makes index.html and other unhashed files revalidate on every use', () => {
    expect(cacheControlFor(join(dir, 'index.html'), dir)).toBe(REVALIDATE);
    expect(cacheControlFor(join(dir, 'favicon.svg'), dir)).toBe(REVALIDATE);
    expect(cacheControlFor(join(dir, 'assets-old.js'), dir)).toBe(REVALIDATE);
  });
});

describe('clientPaths', () => {
  it('lists the files of a build as URL paths, and / for the index', () => {
    const dir = mkdtempSync(join(tmpdir(), 'client-'));
    try {
      mkdirSync(join(dir, 'assets'));
      for (const f of ['index.html', 'favicon.svg', join('assets', 'index-1a2b.js'), '.hidden']) writeFileSync(join(dir, f), 'x');
      expect([...clientPaths(dir)].sort()).toEqual(['/', '/assets/index-1a2b.js', '/favicon.svg', '/index.html']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
