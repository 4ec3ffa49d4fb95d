import { startApp, type TestApp } from './support/app';

describe('REST API', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ PRICE_SOURCES: 'kraken', KRAKEN_URL: 'http://127.0.0.1:9', SOURCE_TIMEOUT_MS: '200' });
  });
  afterAll(() => t.close());

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${t.url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers 404 NO_PRICE_YET before the first price and the tick after it', async () => {
    expect(await get('/api/prices/ETH-USD')).toEqual({ status: 404, body: { statusCode: 404, code: 'NO_PRICE_YET', message: 'no price for ETH-USD yet' } });
    const tick = await t.publish('ETH-USD', 3500.5);
    const res = await get('/api/prices/eth-usd');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tick);
  });

  it('lists configured pairs with their latest tick and freshness', async () => {
    await t.publish('BTC-USD', 97000);
    const { status, body } = await get('/api/pairs');
    expect(status).toBe(200);
    const pairs = body.pairs as { pair: string; fresh: boolean; latest: { price: number } | null }[];
    expect(pairs.map((p) => p.pair)).toEqual(['BTC-USD', 'ETH-USD']);
    expect(pairs[0]).toMatchObject({ fresh: true, latest: { price: 97000 } });
  });

  it('answers 206 with errors when some pairs are invalid or unknown, and 400 when none is valid', async () => {
    await t.publish('BTC-USD', 97001);
    const partial = await get('/api/prices?pairs=BTC/USD,DOGE-USD,bad!');
    expect(partial.status).toBe(206);
    expect((partial.body.prices as { pair: string }[]).map((p) => p.pair)).toEqual(['BTC-USD']);
    expect((partial.body.errors as { code: string }[]).map((e) => e.code)).toEqual(['UNSUPPORTED_PAIR', 'INVALID_PAIR']);
    expect(await get('/api/prices?pairs=nope')).toMatchObject({ status: 400, body: { code: 'INVALID_PAIR' } });
    expect(await get(`/api/prices?pairs=${Array(60).fill('BTC-USD').join(',')}`)).toMatchObject({ status: 400, body: { code: 'TOO_MANY_PAIRS' } });
    expect(await get('/api/prices?pairs=BTC-USD%00')).toMatchObject({ status: 400, body: { code: 'INVALID_QUERY' } });
    expect(await get(`/api/prices?pairs=${'A'.repeat(2000)}`)).toMatchObject({ status: 400, body: { code: 'INVALID_QUERY' } });
  });

  it('serves history oldest first, limited, with complete telling whether the window reaches since', async () => {
    const before = Date.now();
    for (let i = 0; i < 5; i++) await t.publish('ETH-USD', 3600 + i);
    const all = await get(`/api/prices/ETH-USD/history?since=${before}`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ pair: 'ETH-USD', count: 5, complete: true });
    expect((all.body.updates as { price: number }[]).map((u) => u.price)).toEqual([3600, 3601, 3602, 3603, 3604]);
    const last2 = await get('/api/prices/ETH-USD/history?limit=2');
    expect((last2.body.updates as { price: number }[]).map((u) => u.price)).toEqual([3603, 3604]);
    const old = await get('/api/prices/ETH-USD/history?since=2020-01-01T00:00:00Z');
    expect(old.body).toMatchObject({ complete: false });
    expect(await get('/api/prices/ETH-USD/history?limit=0')).toMatchObject({ status: 400, body: { code: 'INVALID_LIMIT' } });
    expect(await get('/api/prices/ETH-USD/history?limit=1001')).toMatchObject({ status: 400, body: { code: 'INVALID_LIMIT' } });
    expect(await get('/api/prices/ETH-USD/history?since=tomorrow')).toMatchObject({ status: 400, body: { code: 'INVALID_RESUME_POINT' } });
    expect(await get(`/api/prices/ETH-USD/history?since=${Date.now() + 3_600_000}`)).toMatchObject({ status: 400, body: { code: 'RESUME_POINT_IN_FUTURE' } });
    expect(await get('/api/prices/XRP-USD/history')).toMatchObject({ status: 404, body: { code: 'UNSUPPORTED_PAIR' } });
    expect(await get('/api/prices/x/history')).toMatchObject({ status: 400, body: { code: 'INVALID_PAIR' } });
  });

  it('keeps the legacy routes of the replaced projects', async () => {
    await t.publish('BTC-USD', 97002);
    const current = await get('/api/price/current');
    expect(current).toMatchObject({ status: 200, body: { pair: 'BTC-USD', price: 97002, symbol: 'BTC', name: 'Bitcoin' } });
    expect(typeof current.body.timestamp).toBe('string');
    const history = await get('/api/price/history?limit=2');
    expect(history.body).toMatchObject({ count: 2 });
    const ltp = await get('/api/v1/ltp?pair=BTC/USD,ETH/USD');
    expect(ltp.status).toBe(200);
    expect(ltp.body.ltp).toEqual([
      { pair: 'BTC/USD', amount: 97002 },
      { pair: 'ETH/USD', amount: 3604 },
    ]);
    const partial = await get('/api/v1/ltp?pair=BTC/USD,LTC/USD');
    expect(partial).toMatchObject({ status: 206, body: { ltp: [{ pair: 'BTC/USD' }], errors: [{ pair: 'LTC/USD', code: 'UNSUPPORTED_PAIR' }] } });
    expect(await get('/api/v1/ltp?pair=garbage')).toMatchObject({ status: 400, body: { code: 'INVALID_PAIR' } });
  });

  it('answers unknown routes with a NOT_FOUND code', async () => {
    expect(await get('/nope')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
  });

  it('reports liveness always, and readiness from price freshness', async () => {
    expect((await get('/health/live')).status).toBe(200);
    const ready = await get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ok', details: { prices: { status: 'up' } } });
  });
});

describe('readiness without prices', () => {
  it('is down (503) while no pair has a fresh price, and live stays up', async () => {
    const t = await startApp({ PRICE_SOURCES: 'kraken', KRAKEN_URL: 'http://127.0.0.1:9', SOURCE_TIMEOUT_MS: '200' });
    try {
      const ready = await fetch(`${t.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'error', error: { prices: { status: 'down' } } });
      expect((await fetch(`${t.url}/health/live`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
