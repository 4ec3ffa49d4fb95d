import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, type TestApp } from './support/app';

/** Serving client/dist (built by `npm run build`, which `pretest` runs). */
describe('web client serving', () => {
  describe('with the client built', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp();
    });
    afterAll(() => t.close());

    it('serves index.html at / with no-cache and the CSP', async () => {
      const res = await fetch(`${t.url}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await res.text();
      expect(html).toContain('<title>price-stream</title>');
      expect(html).not.toMatch(/<script>|style=/);
    });

    it('serves hashed assets as immutable for a year', async () => {
      const asset = readdirSync(join(__dirname, '..', 'client', 'dist', 'assets')).find((f) => f.endsWith('.js'));
      const res = await fetch(`${t.url}/assets/${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    });

    it('leaves API routes and unknown paths to the API', async () => {
      const pairs = await fetch(`${t.url}/api/pairs`);
      expect(pairs.status).toBe(200);
      expect(pairs.headers.get('cache-control')).not.toBe('public, max-age=31536000, immutable');
      const missing = await fetch(`${t.url}/assets/nope.js`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
    });
  });

  it('answers / with a JSON 404 and keeps the API up when the client is not built', async () => {
    const t = await startApp({}, { clientDir: join(__dirname, 'no-such-dir') });
    try {
      const res = await fetch(`${t.url}/`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
      expect((await fetch(`${t.url}/api/pairs`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
