import type { HistoryResponse, Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { FakeUpstream, type FailureMode, type UpstreamName } from './support/fake-upstream';
import { fixtureJson } from './support/fixtures';
import { sleep, waitFor } from './support/wait';

const GOOD = 97000.5;

type Circuit = { source: string; state: string; lastError: string | null; nextAttemptAt: string | null };

describe('price truth against the HTTP fake upstream', () => {
  let fake: FakeUpstream;
  let t: TestApp | undefined;

  const latest = async (pair = 'BTC-USD'): Promise<Tick | null> => {
    const res = await fetch(`${t?.url}/api/prices/${pair}`);
    return res.status === 200 ? ((await res.json()) as Tick) : null;
  };
  /** Every tick of the pair this app published, oldest first. */
  const history = async (pair = 'BTC-USD'): Promise<Tick[]> =>
    ((await (await fetch(`${t?.url}/api/prices/${pair}/history?limit=1000`)).json()) as HistoryResponse).updates;
  const circuits = async (): Promise<Circuit[]> =>
    ((await (await fetch(`${t?.url}/health/ready`)).json()) as { details: { sources: { circuits: Circuit[] } } }).details.sources.circuits;
  const metric = async (name: string, labels: string): Promise<number> => {
    const text = await (await fetch(`${t?.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };
  const start = async (env: Record<string, string>): Promise<TestApp> => {
    // The specs poll the REST routes every 10 ms: past the default rate limit of 600 a minute.
    t = await startApp({ ...fake.env(), PAIRS: 'BTC-USD', POLL_INTERVAL_MS: '150', COINDESK_API_KEY: 'test-key', RATE_LIMIT_PER_MINUTE: '1000000', ...env });
    return t;
  };

  beforeEach(async () => {
    fake = await FakeUpstream.start({ coindeskApiKey: 'test-key' });
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await fake.close();
  });

  it.each<[UpstreamName, FailureMode, UpstreamName]>([
    ['kraken', 'huge_price', 'coinbase'],
    ['kraken', 'tiny_price', 'coinbase'],
    ['kraken', 'wrong_pair', 'coinbase'],
    ['coinbase', 'wrong_pair', 'kraken'],
    ['coingecko', 'wrong_pair', 'kraken'],
    ['coindesk', 'wrong_pair', 'kraken'],
    ['coingecko', 'stale', 'kraken'],
    ['coindesk', 'stale', 'kraken'],
  ])('publishes no price of a primary %s answering %s, and %s serves', async (primary, mode, fallback) => {
    fake.fail(primary, mode);
    await start({ PRICE_SOURCES: `${primary},${fallback}` });
    await waitFor(() => fake.requestCount(primary) >= 3, 5000);
    await waitFor(async () => (await latest())?.source === fallback, 3000);
    const ticks = await history();
    expect(ticks.map((tick) => [tick.price, tick.source])).toEqual([[GOOD, fallback]]);
    const primaryCircuit = (await circuits())[0];
    expect(primaryCircuit.source).toBe(primary);
    expect(primaryCircuit.lastError).not.toBeNull();
  });

  it('is not ready and publishes nothing while the only source answers prices two hours old by its own time', async () => {
    fake.fail('coingecko', 'stale');
    await start({ PRICE_SOURCES: 'coingecko', STALE_AFTER_MS: '1000' });
    await waitFor(() => fake.requestCount('coingecko') >= 2, 5000);
    expect(await latest()).toBeNull();
    expect((await fetch(`${t?.url}/health/ready`)).status).toBe(503);
    expect(await metric('price_stream_prices_rejected_total', 'source="coingecko",reason="stale"')).toBeGreaterThanOrEqual(1);

    fake.recover('coingecko');
    await waitFor(async () => (await fetch(`${t?.url}/health/ready`)).status === 200, 5000);
    expect(await latest()).toMatchObject({ price: GOOD, source: 'coingecko' });
  });

  it('holds back a 50 %-off primary in failover mode: the second source contradicts it and it backs off', async () => {
    await start({ PRICE_SOURCES: 'kraken,coinbase', SOURCE_BACKOFF_MAX_MS: '1000' });
    await waitFor(async () => (await latest())?.source === 'kraken', 3000);
    fake.fail('kraken', 'half_price');
    const before = fake.requestCount('kraken');
    await waitFor(() => fake.requestCount('kraken') >= before + 2, 8000);
    await sleep(300);
    expect((await history()).map((tick) => tick.price)).toEqual([GOOD]);
    expect(await metric('price_stream_price_jumps_total', 'source="kraken",outcome="rejected"')).toBeGreaterThanOrEqual(2);
    expect((await circuits())[0]).toMatchObject({ source: 'kraken', lastError: expect.stringContaining('contradicted by coinbase') });

    fake.recover('kraken');
    fake.setPrice('BTC-USD', GOOD + 10);
    await waitFor(async () => (await latest())?.price === GOOD + 10, 8000);
  }, 20000);

  it('leaves a 50 %-off primary out of the composite in median mode', async () => {
    fake.fail('kraken', 'half_price');
    await start({ PRICE_SOURCES: 'kraken,coinbase,coingecko', PRICE_MODE: 'median', SOURCE_BACKOFF_MAX_MS: '1000' });
    await waitFor(async () => (await latest()) !== null, 3000);
    await waitFor(() => fake.requestCount('coingecko') >= 3, 5000);
    expect(await latest()).toMatchObject({ price: GOOD, source: 'composite', sources: ['coinbase', 'coingecko'] });
    expect((await history()).every((tick) => tick.price === GOOD)).toBe(true);
    expect(await metric('price_stream_prices_rejected_total', 'source="kraken",reason="deviation"')).toBeGreaterThanOrEqual(1);

    // Kraken answers the good price again for a few polls; the next change then has all three
    // (an unchanged composite price makes no tick, whatever its sources).
    fake.recover('kraken');
    const recovered = fake.requestCount('kraken');
    await waitFor(() => fake.requestCount('kraken') >= recovered + 3, 8000);
    fake.setPrice('BTC-USD', GOOD + 10);
    await waitFor(async () => (await latest())?.sources?.length === 3, 8000);
    expect(await latest()).toMatchObject({ price: GOOD + 10, source: 'composite', sources: ['kraken', 'coinbase', 'coingecko'] });
  }, 20000);

  it('backs off a source that answers NaN like a failing one while the next serves', async () => {
    fake.fail('kraken', 'nan_price');
    await start({ PRICE_SOURCES: 'kraken,coinbase', POLL_INTERVAL_MS: '100', SOURCE_BACKOFF_MAX_MS: '800' });
    await waitFor(async () => (await latest())?.source === 'coinbase', 3000);
    fake.resetCounts();
    await sleep(3000);
    // ~30 polls; with the circuit open ~every 800 ms (400–800 with jitter) kraken gets at most ~8 of them.
    expect(fake.requestCount('kraken')).toBeLessThanOrEqual(9);
    expect(fake.requestCount('coinbase')).toBeGreaterThanOrEqual(2 * fake.requestCount('kraken'));
    expect((await circuits())[0]).toMatchObject({ source: 'kraken', lastError: expect.stringContaining('is not a price') });
  }, 15000);

  it('caps a Retry-After of a day at SOURCE_BACKOFF_MAX_MS', async () => {
    fake.fail('kraken', 'rate_limited', { retryAfter: '86400', times: 1 });
    await start({ PRICE_SOURCES: 'kraken,coingecko', SOURCE_BACKOFF_MAX_MS: '1000' });
    await waitFor(async () => (await latest())?.source === 'coingecko', 3000);
    const [kraken] = await circuits();
    expect(Date.parse(kraken.nextAttemptAt ?? '') - Date.now()).toBeLessThanOrEqual(1000);
    await waitFor(() => fake.requestCount('kraken') >= 2, 3000);
    fake.setPrice('BTC-USD', GOOD + 1);
    await waitFor(async () => (await latest())?.source === 'kraken', 3000);
  });

  it('puts the ticker fields each upstream gives on its ticks, as the fixtures have them', async () => {
    const kraken = (fixtureJson('kraken_rest_ticker.json') as { result: { XXBTZUSD: Record<string, string[] | string> } }).result.XXBTZUSD;
    const gecko = (fixtureJson('coingecko_simple_price.json') as { bitcoin: Record<string, number> }).bitcoin;
    await start({ PRICE_SOURCES: 'kraken' });
    await waitFor(async () => (await latest()) !== null, 3000);
    expect(await latest()).toMatchObject({
      source: 'kraken',
      price: GOOD,
      bid: Number(kraken.b[0]),
      ask: Number(kraken.a[0]),
      open24h: Number(kraken.o),
      high24h: Number(kraken.h[1]),
      low24h: Number(kraken.l[1]),
      volume24h: Number(kraken.v[1]),
    });
    await t?.close();

    await start({ PRICE_SOURCES: 'coingecko' });
    await waitFor(async () => (await latest()) !== null, 3000);
    const tick = await latest();
    expect(tick).toMatchObject({ source: 'coingecko', price: GOOD });
    expect(tick?.volume24h).toBeCloseTo(gecko.usd_24h_vol / GOOD, 6);
    expect(tick?.open24h).toBeCloseTo(GOOD / (1 + gecko.usd_24h_change / 100), 6);
    expect(tick?.bid).toBeUndefined();
  });
});
