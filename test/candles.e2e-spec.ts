import type { CandlesResponse, Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { deletePrefix, randomPrefix, REDIS_URL } from './support/redis';
import { getJson } from './support/sse';

const MIN = 60_000;

/**
 * Five BTC-USD ticks over the current minute and the two before it (timestamps set by the test;
 * ids are given at publish time, so all of them are in the window). Returns the three 1m
 * candles they must make.
 */
async function publishThreeMinutes(t: TestApp): Promise<{ ticks: Tick[]; expected: CandlesResponse['candles'] }> {
  const m0 = Math.floor(Date.now() / MIN) * MIN;
  const at = (ms: number, price: number) => t.stream.publish({ pair: 'BTC-USD', price, source: 'simulated', timestamp: new Date(ms).toISOString() });
  const ticks: Tick[] = [];
  for (const [ms, price] of [
    [m0 - 2 * MIN + 1000, 100],
    [m0 - 2 * MIN + 2000, 105],
    [m0 - 2 * MIN + 3000, 98],
    [m0 - MIN + 5000, 101],
    [m0, 102],
  ] as const) {
    const tick = await at(ms, price);
    if (!tick) throw new Error(`price ${price} not published`);
    ticks.push(tick);
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    ticks,
    expected: [
      { time: iso(m0 - 2 * MIN), open: 100, high: 105, low: 98, close: 98, ticks: 3 },
      { time: iso(m0 - MIN), open: 101, high: 101, low: 101, close: 101, ticks: 1 },
      { time: iso(m0), open: 102, high: 102, low: 102, close: 102, ticks: 1 },
    ],
  };
}

const candlesOf = async (t: TestApp, query: string) => getJson(`${t.url}/api/prices/BTC-USD/candles?${query}`);

describe('GET /api/prices/:pair/candles (in memory)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(() => t.close());

  it('answers OHLC candles of the history, oldest first, with the tick count', async () => {
    const { expected } = await publishThreeMinutes(t);
    const res = await candlesOf(t, 'interval=1m&limit=10');
    expect(res.status).toBe(200);
    // The app started seconds ago: its window does not reach back ten minutes, and says so.
    expect(res.body).toEqual({ pair: 'BTC-USD', interval: '1m', complete: false, candles: expected });
  });

  it('keeps the last limit intervals, and makes wider candles of the same ticks', async () => {
    const one = (await candlesOf(t, 'interval=1m&limit=1')).body as CandlesResponse;
    expect(one.candles).toHaveLength(1);
    expect(one.candles[0]).toMatchObject({ close: 102, ticks: 1 });
    const five = (await candlesOf(t, 'interval=5m')).body as CandlesResponse;
    expect(five.interval).toBe('5m');
    expect(five.candles.reduce((n, c) => n + c.ticks, 0)).toBe(5);
    expect(five.candles[0]?.open).toBe(100);
    expect(five.candles.at(-1)?.close).toBe(102);
    expect(Math.max(...five.candles.map((c) => c.high))).toBe(105);
    expect(Math.min(...five.candles.map((c) => c.low))).toBe(98);
    for (const c of five.candles) expect(Date.parse(c.time) % (5 * MIN)).toBe(0);
    expect(((await candlesOf(t, 'interval=1h')).body as CandlesResponse).candles.reduce((n, c) => n + c.ticks, 0)).toBe(5);
  });

  it('defaults to 1m candles and accepts the pair as BTC/USD', async () => {
    const res = await getJson(`${t.url}/api/prices/btc%2Fusd/candles`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pair: 'BTC-USD', interval: '1m' });
  });

  it('has no candle for a pair without ticks', async () => {
    const res = await getJson(`${t.url}/api/prices/ETH-USD/candles?interval=5m`);
    expect(res.body).toMatchObject({ pair: 'ETH-USD', interval: '5m', candles: [] });
  });

  it.each([
    ['interval=2m', 400, 'INVALID_INTERVAL'],
    ['interval=1M', 400, 'INVALID_INTERVAL'],
    ['interval=1m&limit=0', 400, 'INVALID_LIMIT'],
    ['interval=1m&limit=1001', 400, 'INVALID_LIMIT'],
    ['interval=1m&interval=5m', 400, 'INVALID_INTERVAL'],
  ])('refuses %s with %i %s', async (query, status, code) => {
    const res = await candlesOf(t, query);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ statusCode: status, code });
  });

  it('answers 404 UNSUPPORTED_PAIR for a pair that is not configured and 400 INVALID_PAIR for a malformed one', async () => {
    expect((await getJson(`${t.url}/api/prices/DOGE-USD/candles`)).body).toMatchObject({ statusCode: 404, code: 'UNSUPPORTED_PAIR' });
    expect((await getJson(`${t.url}/api/prices/nope/candles`)).body).toMatchObject({ statusCode: 400, code: 'INVALID_PAIR' });
  });

  it('is in the OpenAPI document with its intervals and error codes', async () => {
    const doc = (await getJson(`${t.url}/docs-json`)).body as { paths: Record<string, { get?: { parameters?: { name: string; schema?: { enum?: string[] } }[]; responses: Record<string, { description: string }> } }> };
    const op = doc.paths['/api/prices/{pair}/candles']?.get;
    expect(op?.parameters?.find((p) => p.name === 'interval')?.schema?.enum).toEqual(['1m', '5m', '1h']);
    expect(op?.responses['400']?.description).toContain('INVALID_INTERVAL');
  });
});

describe('GET /api/prices/:pair/candles (with Redis)', () => {
  const prefix = randomPrefix();
  const apps: TestApp[] = [];
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await deletePrefix(prefix);
  });

  it('answers the same candles on every instance, from the shared history', async () => {
    const env = { REDIS_URL, REDIS_PREFIX: prefix };
    const first = await startApp(env);
    apps.push(first);
    const { expected } = await publishThreeMinutes(first);
    const second = await startApp(env);
    apps.push(second);
    for (const t of apps) {
      const res = await candlesOf(t, 'interval=1m&limit=10');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ pair: 'BTC-USD', interval: '1m', candles: expected });
    }
  });
});
