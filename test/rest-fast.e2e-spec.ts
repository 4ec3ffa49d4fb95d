import * as http from 'node:http';
import { FastRest } from '../src/http/fast-rest';
import { startApp, type TestApp } from './support/app';

/** Headers whose values differ between any two answers. */
const VARYING = new Set(['date', 'x-request-id', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'keep-alive', 'connection']);

type Answer = { status: number; headers: Record<string, string>; body: string };

/** A GET with exactly these headers (fetch would add its own), read whole. */
const get = (url: string, headers: Record<string, string> = {}) =>
  new Promise<Answer>((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const kept = Object.entries(res.headers).filter(([name]) => !VARYING.has(name));
          resolve({ status: res.statusCode ?? 0, headers: Object.fromEntries(kept.map(([k, v]) => [k, String(v)])), body });
        });
      })
      .on('error', reject);
  });

/**
 * The lists `GET /api/prices?pairs=` and `GET /api/v1/ltp?pair=` ahead of Express: each answer
 * (status, body, every header, 304) is compared with Express' own for the same request, reached
 * through a spelling the edge router leaves to Express (a trailing slash, which Express' router
 * matches all the same).
 */
describe('price lists ahead of Express (the edge router)', () => {
  let t: TestApp;
  let fast: jest.SpyInstance;
  beforeAll(async () => {
    t = await startApp({ CORS_ORIGINS: 'https://app.example', RATE_LIMIT_PER_MINUTE: '10000', MAX_PAIRS_PER_REQUEST: '5' });
    fast = jest.spyOn(FastRest.prototype, 'serve');
    await t.publish('BTC-USD', 97100.25);
  });
  afterAll(async () => {
    fast.mockRestore();
    await t.close();
  });
  /** Whether the edge router answered the request `send` makes. */
  const servedFast = async (send: () => Promise<unknown>) => {
    const before = fast.mock.results.length;
    await send();
    return fast.mock.results.slice(before).some((r) => r.value === true);
  };

  /** The fast answer and Express' for `path?query`, asserting which served which. */
  const both = async (path: string, query: string, headers: Record<string, string> = {}) => {
    let a: Answer | undefined;
    let b: Answer | undefined;
    expect(await servedFast(async () => (a = await get(`${t.url}${path}${query}`, headers)))).toBe(true);
    expect(await servedFast(async () => (b = await get(`${t.url}${path}/${query}`, headers)))).toBe(false);
    return [a!, b!];
  };

  it.each([
    ['/api/prices', '?pairs=BTC-USD', 200, { prices: [{ pair: 'BTC-USD', price: 97100.25 }] }],
    ['/api/prices', '', 206, { errors: [{ pair: 'ETH-USD', code: 'NO_PRICE_YET' }] }],
    ['/api/prices', '?pairs=btc/usd,ETH-USD,DOGE-USD,bad!', 206, { errors: [{ code: 'UNSUPPORTED_PAIR' }, { code: 'INVALID_PAIR' }, { code: 'NO_PRICE_YET' }] }],
    ['/api/prices', '?pairs=BTC-USD&pairs=ETH-USD', 206, { prices: [{ pair: 'BTC-USD' }] }],
    ['/api/prices', '?pairs=nope', 400, { code: 'INVALID_PAIR' }],
    ['/api/prices', '?pairs=XRP-USD', 400, { code: 'UNSUPPORTED_PAIR' }],
    ['/api/prices', '?pairs=a-b,c-d,e-f,g-h,i-j,k-l', 400, { code: 'TOO_MANY_PAIRS' }],
    ['/api/prices', '?pairs=BTC-USD%00', 400, { code: 'INVALID_QUERY' }],
    ['/api/prices', '?pairs=%FF%FE', 400, { code: 'INVALID_QUERY' }],
    ['/api/v1/ltp', '?pair=BTC/USD', 200, { ltp: [{ pair: 'BTC/USD', amount: 97100.25 }] }],
    ['/api/v1/ltp', '', 206, { errors: [{ pair: 'ETH/USD', code: 'NO_PRICE_YET', error: 'no price for ETH-USD yet' }] }],
    ['/api/v1/ltp', '?pair=BTC-USD,nope', 206, { errors: [{ pair: 'nope', code: 'INVALID_PAIR' }] }],
    ['/api/v1/ltp', '?pair=XRP/USD', 400, { code: 'UNSUPPORTED_PAIR' }],
    ['/api/v1/ltp', '?pair=x', 400, { code: 'INVALID_PAIR' }],
    ['/api/v1/ltp', '?pair=a/b,c/d,e/f,g/h,i/j,k/l', 400, { code: 'TOO_MANY_PAIRS' }],
  ])('GET %s%s: %i, the bytes and headers Express gives', async (path, query, status, body) => {
    const origins: Record<string, string>[] = [{ Origin: 'https://app.example' }, { Origin: 'https://elsewhere.example' }, {}];
    for (const headers of origins) {
      const [a, b] = await both(path, query, headers);
      expect(a.status).toBe(status);
      expect(JSON.parse(a.body)).toMatchObject(body);
      expect(a).toEqual(b);
    }
  });

  it('answers 304 to the ETag Express would give, and a full answer to a reload', async () => {
    const [a] = await both('/api/prices', '?pairs=BTC-USD');
    const etag = a.headers.etag;
    expect(etag).toMatch(/^W\/"/);
    const [fresh, viaExpress] = await both('/api/prices', '?pairs=BTC-USD', { 'If-None-Match': etag });
    expect(fresh).toMatchObject({ status: 304, body: '' });
    expect(fresh).toEqual(viaExpress);
    const [reload] = await both('/api/prices', '?pairs=BTC-USD', { 'If-None-Match': etag, 'Cache-Control': 'no-cache' });
    expect(reload.status).toBe(200);
    // A new tick is a new body and a new ETag.
    await t.publish('BTC-USD', 97100.5);
    const [changed] = await both('/api/prices', '?pairs=BTC-USD', { 'If-None-Match': etag });
    expect(changed.status).toBe(200);
  });

  it('leaves HEAD to Express', async () => {
    let head = 0;
    const sendHead = () =>
      new Promise<void>((resolve, reject) => {
        http
          .request(`${t.url}/api/v1/ltp?pair=BTC/USD`, { method: 'HEAD' }, (res) => {
            head = res.statusCode ?? 0;
            res.resume().on('end', resolve);
          })
          .on('error', reject)
          .end();
      });
    expect(await servedFast(sendHead)).toBe(false);
    expect(head).toBe(200);
  });
});

describe('price lists: the rate limit ahead of Express', () => {
  it('spends the route budget the guard spends, with the same 429', async () => {
    const t = await startApp({ RATE_LIMIT_PER_MINUTE: '4' });
    try {
      await t.publish('BTC-USD', 97003);
      const answers: Answer[] = [];
      for (let i = 0; i < 3; i++) answers.push(await get(`${t.url}/api/v1/ltp?pair=BTC/USD`));
      expect(answers.map((a) => [a.status, a.headers['x-ratelimit-limit']])).toEqual(Array(3).fill([200, '4']));
      // The fourth through Express, the fifth through the edge: the budget is one.
      expect((await get(`${t.url}/api/v1/ltp/?pair=BTC/USD`)).status).toBe(200);
      const limited = await get(`${t.url}/api/v1/ltp?pair=BTC/USD`);
      const viaGuard = await get(`${t.url}/api/v1/ltp/?pair=BTC/USD`);
      expect(limited.status).toBe(429);
      expect(JSON.parse(limited.body)).toEqual({ statusCode: 429, code: 'RATE_LIMITED', message: 'too many requests; retry after the Retry-After delay' });
      expect({ ...limited, headers: { ...limited.headers, 'retry-after': undefined } }).toEqual({ ...viaGuard, headers: { ...viaGuard.headers, 'retry-after': undefined } });
      // Another route keeps its own budget.
      expect((await get(`${t.url}/api/prices?pairs=BTC-USD`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
