import { join } from 'node:path';
import { cacheControlFor, IMMUTABLE, REVALIDATE } from './serve-client';

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
