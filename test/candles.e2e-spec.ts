import http from 'node:http';
import type { Candle, CandlesResponse, Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { deletePrefix, randomPrefix, REDIS_URL, testClient } from './support/redis';
import { getJson, waitFor } from './support/sse';

const MIN = 60_000;
/** These tests publish their own ticks: no history from a backfill. */
const NO_BACKFILL = { CANDLE_BACKFILL: 'off' };

/**
 * Five BTC-USD ticks over the current minute and the two before it (timestamps set by the test).
 * Returns the three 1m candles they must make.
 */
async function publishThreeMinutes(t: TestApp): Promise<{ ticks: Tick[]; expected: Candle[] }> {
  const m0 = Math.floor(Date.now() / MIN) * MIN;
  const at = (ms: number, price: number) => t.log.publish({ pair: 'BTC-USD', price, source: 'simulated', timestamp: new Date(ms).toISOString() });
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
  const live = { source: 'live' as const };
  return {
    ticks,
    expected: [
      { time: iso(m0 - 2 * MIN), open: 100, high: 105, low: 98, close: 98, ticks: 3, first: iso(m0 - 2 * MIN + 1000), last: iso(m0 - 2 * MIN + 3000), ...live, closed: true },
      { time: iso(m0 - MIN), open: 101, high: 101, low: 101, close: 101, ticks: 1, first: iso(m0 - MIN + 5000), last: iso(m0 - MIN + 5000), ...live, closed: true },
      { time: iso(m0), open: 102, high: 102, low: 102, close: 102, ticks: 1, first: iso(m0), last: iso(m0), ...live, closed: false },
    ],
  };
}

/** A conditional GET as a browser revalidates (fetch() adds Cache-Control: no-cache, which asks for the body). */
const conditionalGet = (url: string, etag: string): Promise<{ status: number; etag: string | undefined }> =>
  new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'if-none-match': etag }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag }));
      })
      .on('error', reject);
  });

const withoutClosed = (candles: Candle[]) => candles.map(({ closed: _closed, ...c }) => c);

const candlesOf = async (t: TestApp, query: string) => getJson(`${t.url}/api/prices/BTC-USD/candles?${query}`);

describe('GET /api/prices/:pair/candles (in memory)', () => {
  let t: TestApp;
  let expected: Candle[];
  beforeAll(async () => {
    // A window of 3 ticks: the candles must come from their own store, not from the window.
    t = await startApp({ ...NO_BACKFILL, HISTORY_SIZE: '3' });
    ({ expected } = await publishThreeMinutes(t));
  });
  afterAll(() => t.close());

  it('answers 1m candles of every tick, oldest first, the open one closed:false, beyond the tick window', async () => {
    const res = await candlesOf(t, 'interval=1m&limit=10');
    expect(res.status).toBe(200);
    const body = res.body as CandlesResponse;
    expect(body).toMatchObject({ pair: 'BTC-USD', interval: '1m', candles: expected });
    // The seven minutes before the first tick have no data: one explicit gap, no flat candles.
    expect(body.gaps).toEqual([{ from: body.from, to: expected[0].time }]);
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(9 * MIN);
  });

  it('keeps the last limit intervals, and rolls the same minutes up into wider candles', async () => {
    const one = (await candlesOf(t, 'interval=1m&limit=1')).body as CandlesResponse;
    expect(one.candles).toEqual([expected[2]]);
    for (const interval of ['5m', '15m', '1h', '4h', '1d']) {
      const wide = (await candlesOf(t, `interval=${interval}&limit=3`)).body as CandlesResponse;
      expect(wide.interval).toBe(interval);
      expect(wide.candles.reduce((n, c) => n + c.ticks, 0)).toBe(5);
      expect(wide.candles[0]?.open).toBe(100);
      expect(wide.candles.at(-1)).toMatchObject({ close: 102, closed: false });
      expect(Math.max(...wide.candles.map((c) => c.high))).toBe(105);
      expect(Math.min(...wide.candles.map((c) => c.low))).toBe(98);
    }
  });

  it('reads a window from `from` forward and up to `to`, as epoch ms or ISO-8601', async () => {
    const [first, second] = expected;
    const res = (await candlesOf(t, `interval=1m&from=${Date.parse(first.time)}&to=${encodeURIComponent(second.time)}`)).body as CandlesResponse;
    expect(res.candles).toEqual([first, second]);
    expect(res.gaps).toEqual([]);
    const limited = (await candlesOf(t, `interval=1m&from=${encodeURIComponent(first.time)}&limit=1`)).body as CandlesResponse;
    expect(limited.candles).toEqual([first]);
  });

  it('answers with an ETag and 304 to If-None-Match, until a tick changes the open candle', async () => {
    const url = `${t.url}/api/prices/BTC-USD/candles?interval=1h&limit=24`;
    const first = await fetch(url);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"c-/);
    expect(await conditionalGet(url, etag!)).toEqual({ status: 304, etag });
    await t.publish('BTC-USD', 103.5);
    const after = await conditionalGet(url, etag!);
    expect(after.status).toBe(200);
    expect(after.etag).not.toBe(etag);
    expect(((await (await fetch(url)).json()) as CandlesResponse).candles.at(-1)).toMatchObject({ close: 103.5, closed: false });
  });

  it('defaults to 1m candles and accepts the pair as BTC/USD', async () => {
    const res = await getJson(`${t.url}/api/prices/btc%2Fusd/candles`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pair: 'BTC-USD', interval: '1m' });
  });

  it('has no candle for a pair without ticks: the whole window is one gap', async () => {
    const res = (await getJson(`${t.url}/api/prices/ETH-USD/candles?interval=5m&limit=4`)).body as CandlesResponse;
    expect(res).toMatchObject({ pair: 'ETH-USD', interval: '5m', candles: [] });
    expect(res.gaps).toEqual([{ from: res.from, to: new Date(Date.parse(res.to) + 5 * MIN).toISOString() }]);
  });

  it.each([
    ['interval=2m', 'INVALID_INTERVAL'],
    ['interval=1M', 'INVALID_INTERVAL'],
    ['interval=1m&interval=5m', 'INVALID_INTERVAL'],
    ['interval=1m&limit=0', 'INVALID_LIMIT'],
    ['interval=1m&limit=1001', 'INVALID_LIMIT'],
    ['from=yesterday', 'INVALID_FROM'],
    ['from=12', 'INVALID_FROM'],
    ['to=2026-13-45T00:00:00Z', 'INVALID_TO'],
    ['to=2026-01-01', 'INVALID_TO'],
    ['from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'INVALID_RANGE'],
  ])('refuses %s with 400 %s', async (query, code) => {
    const res = await candlesOf(t, query);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, code });
  });

  it('answers 404 UNSUPPORTED_PAIR for a pair that is not configured and 400 INVALID_PAIR for a malformed one', async () => {
    expect((await getJson(`${t.url}/api/prices/DOGE-USD/candles`)).body).toMatchObject({ statusCode: 404, code: 'UNSUPPORTED_PAIR' });
    expect((await getJson(`${t.url}/api/prices/nope/candles`)).body).toMatchObject({ statusCode: 400, code: 'INVALID_PAIR' });
  });

  it('is in the OpenAPI document with its intervals, parameters and error codes', async () => {
    const doc = (await getJson(`${t.url}/docs-json`)).body as { paths: Record<string, { get?: { parameters?: { name: string; schema?: { enum?: string[] } }[]; responses: Record<string, { description: string }> } }> };
    const op = doc.paths['/api/prices/{pair}/candles']?.get;
    expect(op?.parameters?.find((p) => p.name === 'interval')?.schema?.enum).toEqual(['1m', '5m', '15m', '1h', '4h', '1d']);
    expect(op?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['from', 'to', 'limit']));
    for (const code of ['INVALID_INTERVAL', 'INVALID_FROM', 'INVALID_TO', 'INVALID_RANGE', 'INVALID_LIMIT']) expect(op?.responses['400']?.description).toContain(code);
  });
});

describe('GET /api/prices/:pair/candles (with Redis)', () => {
  const prefix = randomPrefix();
  const apps: TestApp[] = [];
  // The leader polls: a source that never answers, so that only the test's ticks are published.
  const env = { ...NO_BACKFILL, REDIS_URL, REDIS_PREFIX: prefix, PRICE_SOURCES: 'kraken', KRAKEN_URL: 'http://127.0.0.1:9', SOURCE_TIMEOUT_MS: '200' };
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await deletePrefix(prefix);
  });

  it('answers the same candles on every instance, and keeps them when every instance restarted', async () => {
    const first = await startApp(env);
    apps.push(first);
    const { expected } = await publishThreeMinutes(first);
    const second = await startApp(env);
    apps.push(second);
    // The leader writes its minutes to Redis once a second; the second instance reads them again after its start.
    for (const t of apps) {
      let last: unknown;
      // Without `closed`: the open minute may close while the test runs.
      await waitFor(
        async () => JSON.stringify((last = withoutClosed(((await candlesOf(t, 'interval=1m&limit=10')).body as CandlesResponse).candles))) === JSON.stringify(withoutClosed(expected)),
        5000,
        () => JSON.stringify(last),
      );
    }
    await Promise.all(apps.splice(0).map((a) => a.close()));

    const restarted = await startApp(env);
    apps.push(restarted);
    const res = (await candlesOf(restarted, 'interval=1m&limit=10')).body as CandlesResponse;
    // The open minute may have closed meanwhile; the rest is as it was.
    expect(withoutClosed(res.candles)).toEqual(withoutClosed(expected));
  });

  it('writes the minutes an instance built before it became the leader, once it does', async () => {
    const own = randomPrefix();
    const redis = testClient();
    try {
      // Another instance holds the lease for 2 s more: this one starts as a follower.
      await redis.set(`${own}:leader`, 'somebody-else', 'PX', 2000);
      const follower = await startApp({ ...env, REDIS_PREFIX: own, LEADER_TTL_MS: '1000' });
      apps.push(follower);
      const { expected } = await publishThreeMinutes(follower);
      // The lease runs out and this instance takes it; a new instance reads what it wrote.
      await waitFor(async () => (await redis.get(`${own}:leader`)) !== 'somebody-else' && (await redis.get(`${own}:leader`)) !== null, 8000);
      await new Promise((r) => setTimeout(r, 1500)); // its next flush
      const reader = await startApp({ ...env, REDIS_PREFIX: own, LEADER_TTL_MS: '1000' });
      apps.push(reader);
      const res = (await candlesOf(reader, 'interval=1m&limit=10')).body as CandlesResponse;
      expect(withoutClosed(res.candles)).toEqual(withoutClosed(expected));
    } finally {
      await Promise.all(apps.splice(0).map((a) => a.close()));
      await deletePrefix(own);
      redis.disconnect();
    }
  });
});
