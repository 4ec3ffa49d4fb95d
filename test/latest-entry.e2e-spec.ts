import * as http from 'node:http';
import { FastRest } from '../src/http/fast-rest';
import { startApp, type TestApp } from './support/app';
import { waitFor } from './support/wait';
import { captureLogs } from './support/logs';

/** Headers whose values differ between any two answers. */
const VARYING = new Set(['date', 'x-request-id', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'keep-alive', 'connection']);

const headersOf = (res: Response): Record<string, string> => Object.fromEntries([...res.headers].filter(([name]) => !VARYING.has(name)));

describe('latest price ahead of Express (the edge router)', () => {
  let t: TestApp;
  let fast: jest.SpyInstance;
  const lines: string[] = [];
  beforeAll(async () => {
    const { destination: sink } = captureLogs(lines);
    t = await startApp({ LOG_LEVEL: 'info', CORS_ORIGINS: 'https://app.example', RATE_LIMIT_PER_MINUTE: '1000' }, { logDestination: sink });
    fast = jest.spyOn(FastRest.prototype, 'serve');
  });
  afterAll(async () => {
    fast.mockRestore();
    await t.close();
  });
  /** A GET with If-None-Match and nothing else (fetch would add Cache-Control: no-cache). */
  const conditionalGet = (path: string, etag: string) =>
    new Promise<{ status: number; etag: string | undefined; length: number }>((resolve, reject) => {
      http
        .get(`${t.url}${path}`, { headers: { 'If-None-Match': etag } }, (res) => {
          let length = 0;
          res.on('data', (chunk: Buffer) => (length += chunk.length));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, length }));
        })
        .on('error', reject);
    });
  const servedFast = () => fast.mock.results.at(-1)?.value === true;

  it('answers /api/prices/:pair and /api/price/current with the bytes and headers the controllers give, and 304 for their ETag', async () => {
    const tick = await t.publish('BTC-USD', 97001.5);
    for (const [path, viaExpress] of [
      ['/api/prices/BTC-USD', '/api/prices/BTC%2DUSD'],
      ['/api/price/current', '/api/price/current?x=1'],
    ]) {
      const a = await fetch(`${t.url}${path}`, { headers: { Origin: 'https://app.example', 'X-Request-Id': 'fast-1' } });
      expect(servedFast()).toBe(true);
      const b = await fetch(`${t.url}${viaExpress}`, { headers: { Origin: 'https://app.example' } });
      expect(servedFast()).toBe(false);
      expect(a.status).toBe(200);
      expect(a.headers.get('x-request-id')).toBe('fast-1');
      expect(headersOf(a)).toEqual(headersOf(b));
      expect(a.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(a.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const body = await a.text();
      expect(body).toBe(await b.text());
      expect(JSON.parse(body)).toMatchObject({ id: tick!.id, price: 97001.5 });
      const etag = a.headers.get('etag')!;
      expect(await conditionalGet(path, etag)).toEqual({ status: 304, etag, length: 0 });
      expect(servedFast()).toBe(true);
      expect(await conditionalGet(viaExpress, etag)).toEqual({ status: 304, etag, length: 0 });
      // fetch() sends Cache-Control: no-cache with a conditional request: a reload, answered in full.
      expect((await fetch(`${t.url}${path}`, { headers: { 'If-None-Match': etag } })).status).toBe(200);
    }
    await waitFor(() => lines.some((l) => l.includes('fast-1')));
    expect(JSON.parse(lines.find((l) => l.includes('fast-1'))!)).toMatchObject({ requestId: 'fast-1', req: { method: 'GET', url: '/api/prices/BTC-USD' }, res: { statusCode: 200 }, msg: 'request completed' });
  });

  it('leaves errors to the routes: no price yet, unknown or invalid pairs, HEAD', async () => {
    const noPrice = await fetch(`${t.url}/api/prices/ETH-USD`);
    expect(servedFast()).toBe(false);
    expect(noPrice.status).toBe(404);
    expect(await noPrice.json()).toMatchObject({ code: 'NO_PRICE_YET' });
    expect((await fetch(`${t.url}/api/prices/XRP-USD`)).status).toBe(404);
    expect((await fetch(`${t.url}/api/prices/bad!`)).status).toBe(400);
    expect((await fetch(`${t.url}/api/prices/BTC-USD`, { method: 'HEAD' })).status).toBe(200);
  });
});

describe('rate limit ahead of Express (the edge router)', () => {
  it('shares the route budget with the guard and answers 429 RATE_LIMITED with Retry-After past it', async () => {
    const t = await startApp({ RATE_LIMIT_PER_MINUTE: '6' });
    const fast = jest.spyOn(FastRest.prototype, 'serve');
    const servedFast = () => fast.mock.results.at(-1)?.value === true;
    try {
      await t.publish('BTC-USD', 97002);
      let limited: Response | undefined;
      for (let i = 0; i < 8 && !limited; i++) {
        const res = await fetch(`${t.url}/api/prices/BTC-USD`);
        if (res.status === 429) limited = res;
        else expect(res.headers.get('x-ratelimit-limit')).toBe('6');
      }
      expect(limited).toBeDefined();
      expect(servedFast()).toBe(true);
      expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await limited!.json()).toEqual({ statusCode: 429, code: 'RATE_LIMITED', message: 'too many requests; retry after the Retry-After delay' });
      // The same budget through Express (the guard) is spent too.
      const viaGuard = await fetch(`${t.url}/api/prices/BTC%2DUSD`);
      expect(viaGuard.status).toBe(429);
      expect(await viaGuard.json()).toMatchObject({ code: 'RATE_LIMITED' });
      // And both refusals carry the same headers (the Retry-After seconds may have ticked on).
      const refusal = (res: Response) => ({ ...headersOf(res), 'retry-after': undefined });
      expect(refusal(limited!)).toEqual(refusal(viaGuard));
    } finally {
      fast.mockRestore();
      await t.close();
    }
  });
});
