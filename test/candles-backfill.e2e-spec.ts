import { CandleBackfill } from '../src/candles/candle-backfill.service';
import type { CandlesResponse } from '../src/shared/wire';
import http from 'node:http';
import { startApp, type TestApp } from './support/app';
import { startCluster } from './support/cluster';
import { FakeUpstream } from './support/fake-upstream';
import { deletePrefix, randomPrefix, REDIS_URL } from './support/redis';
import { getJson, sleep, waitFor } from './support/sse';

const MIN = 60_000;
const candles = async (t: TestApp, query: string, pair = 'BTC-USD') => (await getJson(`${t.url}/api/prices/${pair}/candles?${query}`)).body as CandlesResponse;

describe('candle backfill at start (against fakes of the exchanges)', () => {
  let fake: FakeUpstream;
  const apps: TestApp[] = [];
  const start = async (env: Record<string, string>) => {
    const t = await startApp({ ...fake.env(), POLL_INTERVAL_MS: '500', ...env });
    apps.push(t);
    return t;
  };
  beforeEach(async () => {
    fake = await FakeUpstream.start();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await fake.close();
  });

  it('answers 12 hourly candles within seconds of the first start, labelled with their source', async () => {
    const startedAt = Date.now();
    const t = await start({ PRICE_SOURCES: 'kraken,coinbase' });
    let res: CandlesResponse | undefined;
    await waitFor(async () => (res = await candles(t, 'interval=1h&limit=12')).candles.length === 12, 10_000, () => JSON.stringify(res?.gaps));
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(res!.gaps).toEqual([]);
    expect(res!.candles.slice(0, -1).every((c) => c.closed)).toBe(true);
    expect(res!.candles.at(-1)?.closed).toBe(false);
    await t.app.get(CandleBackfill).done();
    // Coinbase Exchange reaches back 24 hours, in pages of at most 300 minutes.
    const pages = fake.requests('coinbase_exchange').filter((r) => r.path === '/products/BTC-USD/candles');
    expect(pages).toHaveLength(5);
    const spans = pages.map((p) => [Date.parse(p.query.get('start')!), Date.parse(p.query.get('end')!)]);
    for (const [from, to] of spans) expect(to - from).toBeLessThan(300 * MIN);
    expect(spans[0][1] - spans[4][0]).toBeGreaterThanOrEqual(24 * 60 * MIN - 2 * MIN);
    expect(pages.every((p) => p.query.get('granularity') === '60')).toBe(true);
    expect(fake.requests('kraken_ohlc')[0]?.query.get('interval')).toBe('1');
    const day = await candles(t, 'interval=1h&limit=24');
    expect(day.candles.length).toBeGreaterThanOrEqual(23);
    const minutes = await candles(t, 'interval=1m&limit=1000');
    expect(new Set(minutes.candles.map((c) => c.source))).toEqual(new Set(['kraken', 'coinbase', 'live']));
    // The live price agrees with the history at the seam.
    const live = minutes.candles.filter((c) => c.source === 'live');
    expect(live.length).toBeGreaterThan(0);
    expect(live.every((c) => c.ticks > 0 && c.first !== null)).toBe(true);
    expect(minutes.candles.filter((c) => c.source !== 'live').every((c) => c.ticks === 0 && c.first === null)).toBe(true);
  });

  it('leaves a minute without trades a gap (Kraken fills it with a flat candle of count 0)', async () => {
    const t = await start({ PRICE_SOURCES: 'kraken', PAIRS: 'BTC-USD' });
    await t.app.get(CandleBackfill).done();
    const res = await candles(t, 'interval=1m&limit=720');
    expect(res.candles.filter((c) => c.source === 'kraken').length).toBeGreaterThan(700);
    // The fake's every 97th minute has count 0: gaps of one minute each, inside the history.
    const oneMinuteGaps = res.gaps.filter((g) => Date.parse(g.to) - Date.parse(g.from) === MIN);
    expect(oneMinuteGaps.length).toBeGreaterThanOrEqual(6);
    for (const g of oneMinuteGaps) expect(res.candles.some((c) => c.time === g.from)).toBe(false);
  });

  it('refuses a history that does not meet the live price at the seam', async () => {
    fake.fail('coinbase_exchange', 'half_price');
    const t = await start({ PRICE_SOURCES: 'kraken,coinbase', PAIRS: 'BTC-USD', SOURCE_BACKOFF_MAX_MS: '100' });
    await t.app.get(CandleBackfill).done();
    const res = await candles(t, 'interval=1m&limit=1000');
    expect(res.candles.some((c) => c.source === 'kraken')).toBe(true);
    expect(res.candles.some((c) => c.source === 'coinbase')).toBe(false);
    expect(fake.requests('coinbase_exchange').length).toBeGreaterThan(5); // it was retried
  });

  it('never delays readiness: a hanging backfill is retried with backoff and fills in later', async () => {
    fake.fail('kraken_ohlc', 'hang', { times: 2 });
    const t = await start({ PRICE_SOURCES: 'kraken', PAIRS: 'BTC-USD', SOURCE_TIMEOUT_MS: '1000' });
    // Ready with the first price, while the backfill still waits for its first answer.
    await waitFor(async () => (await getJson(`${t.url}/health/ready`)).status === 200, 5000);
    expect((await candles(t, 'interval=1h&limit=3')).candles.every((c) => c.source === 'live')).toBe(true);
    await waitFor(async () => (await candles(t, 'interval=1h&limit=3')).candles.some((c) => c.source === 'kraken' || c.source === 'mixed'), 15_000);
    expect(fake.requests('kraken_ohlc').length).toBe(3);
  });

  it('does not hold up a shutdown while an exchange hangs on a backfill request', async () => {
    fake.fail('coinbase_exchange', 'hang');
    const t = await start({ PRICE_SOURCES: 'coinbase', PAIRS: 'BTC-USD', SOURCE_TIMEOUT_MS: '20000' });
    await waitFor(() => fake.requests('coinbase_exchange').length >= 1, 10_000);
    apps.splice(apps.indexOf(t), 1);
    const closing = Date.now();
    await t.close();
    // The request's own timeout (20 s, past SHUTDOWN_TIMEOUT_MS) is not waited for.
    expect(Date.now() - closing).toBeLessThan(5000);
  });

  it('gives the simulated source a plausible day of history, labelled simulated', async () => {
    const t = await start({ PRICE_SOURCES: 'simulated', PAIRS: 'BTC-USD' });
    await t.app.get(CandleBackfill).done();
    const res = await candles(t, 'interval=1h&limit=24');
    expect(res.candles.length).toBe(24);
    expect(res.candles.slice(0, 20).every((c) => c.source === 'simulated')).toBe(true);
    const closes = res.candles.map((c) => c.close);
    expect(Math.max(...closes) / Math.min(...closes)).toBeLessThan(1.5);
  });
});

describe('candle backfill with Redis', () => {
  const prefix = randomPrefix();
  let fake: FakeUpstream;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    fake = await FakeUpstream.start();
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await fake.close();
    await deletePrefix(prefix);
  });

  it('is done by the leader only, and the candles are still there after every instance restarted', async () => {
    const env = { ...fake.env(), REDIS_URL, REDIS_PREFIX: prefix, PRICE_SOURCES: 'kraken', PAIRS: 'BTC-USD', POLL_INTERVAL_MS: '500' };
    const first = await startApp(env);
    apps.push(first);
    await waitFor(async () => (await candles(first, 'interval=1h&limit=12')).candles.length === 12, 10_000);
    const second = await startApp(env);
    apps.push(second);
    // The follower reads the leader's backfill from Redis; it asks no exchange itself.
    await waitFor(async () => (await candles(second, 'interval=1h&limit=12')).candles.length === 12, 10_000);
    expect(fake.requests('kraken_ohlc')).toHaveLength(1);
    await Promise.all(apps.splice(0).map((a) => a.close()));

    // Every instance gone; the exchanges unreachable: the history comes from Redis alone.
    const restarted = await startApp({ ...env, KRAKEN_URL: 'http://127.0.0.1:9', SOURCE_TIMEOUT_MS: '200' });
    apps.push(restarted);
    const res = await candles(restarted, 'interval=1h&limit=12');
    expect(res.candles).toHaveLength(12);
    expect(res.candles.slice(0, -1).every((c) => c.source === 'kraken' || c.source === 'mixed')).toBe(true);
    await sleep(100);
  });
});

describe('candle backfill with WORKERS=2 (no Redis)', () => {
  /** One request on a new connection: the worker that served it (X-Served-By) and its candles. */
  const ask = (url: string): Promise<{ worker: string; body: CandlesResponse }> =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ worker: String(res.headers['x-served-by']), body: JSON.parse(text) as CandlesResponse }));
        })
        .on('error', reject);
    });

  it('is done by the primary, and every worker answers its candles', async () => {
    const fake = await FakeUpstream.start();
    const c = await startCluster({ ...fake.env(), PRICE_SOURCES: 'kraken', POLL_INTERVAL_MS: '500' });
    try {
      const full = new Set<string>();
      await waitFor(
        async () => {
          const { worker, body } = await ask(`${c.url}/api/prices/BTC-USD/candles?interval=1h&limit=12`);
          if (body.candles.length === 12) full.add(worker);
          return full.size === 2;
        },
        20_000,
        () => [...full].join(','),
      );
      // One backfill for the service (per pair), not one per worker.
      expect(fake.requests('kraken_ohlc').filter((r) => r.query.get('pair') === 'XBTUSD')).toHaveLength(1);
    } finally {
      expect(await c.stop()).toBe(0);
      await fake.close();
    }
  }, 60_000);
});
