import { startApp, type TestApp } from './support/app';
import { FakeUpstream } from './support/fake-upstream';
import { waitFor } from './support/wait';


type Latest = { price: number; source: string } | null;

describe('polling real upstream shapes over HTTP', () => {
  let fake: FakeUpstream;
  let t: TestApp;
  const latest = async (pair: string): Promise<Latest> => {
    const res = await fetch(`${t.url}/api/prices/${pair}`);
    return res.status === 200 ? ((await res.json()) as Latest) : null;
  };

  beforeEach(async () => {
    fake = await FakeUpstream.start();
  });
  afterEach(async () => {
    await t?.close();
    await fake.close();
  });

  it('serves prices from the first source and becomes ready', async () => {
    t = await startApp({ ...fake.env(), PRICE_SOURCES: 'kraken,coinbase', POLL_INTERVAL_MS: '200' });
    await waitFor(async () => (await latest('BTC-USD'))?.source === 'kraken', 3000);
    expect(await latest('BTC-USD')).toMatchObject({ price: 97000.5, source: 'kraken' });
    expect(await latest('ETH-USD')).toMatchObject({ price: 3500.25, source: 'kraken' });
    const ready = await fetch(`${t.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ details: { sources: { circuits: [{ source: 'kraken', state: 'closed' }, { source: 'coinbase', state: 'closed' }] } } });
  });

  it('fails over to the next source within one interval and asks the failing one only a few times', async () => {
    fake.fail('kraken', 'http_500');
    fake.setPrice('BTC-USD', 98000);
    t = await startApp({ ...fake.env(), PRICE_SOURCES: 'kraken,coinbase', POLL_INTERVAL_MS: '250', SOURCE_BACKOFF_MAX_MS: '60000' });
    // The very first poll already falls through to Coinbase.
    const waited = await waitFor(async () => (await latest('BTC-USD'))?.source === 'coinbase', 2000);
    expect(waited).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 4000));
    // 16 polls in 4 s; exponential backoff (250, 500, 1000, 2000 ms with jitter) allows about 5.
    expect(fake.requestCount('kraken')).toBeLessThanOrEqual(6);
    expect(fake.requestCount('coinbase')).toBeGreaterThanOrEqual(10);
    const ready = (await (await fetch(`${t.url}/health/ready`)).json()) as { details: { sources: { circuits: { source: string; state: string }[] } } };
    expect(ready.details.sources.circuits[0]).toMatchObject({ source: 'kraken' });
    expect(ready.details.sources.circuits[0].state).not.toBe('closed');
    // Kraken recovers: its next trial succeeds, its circuit closes and it serves again.
    fake.recover('kraken');
    const krakenCircuit = async () =>
      ((await (await fetch(`${t.url}/health/ready`)).json()) as { details: { sources: { circuits: { state: string }[] } } }).details.sources.circuits[0].state;
    await waitFor(async () => (await krakenCircuit()) === 'closed', 8000);
    fake.setPrice('BTC-USD', 98001);
    await waitFor(async () => (await latest('BTC-USD'))?.source === 'kraken', 2000);
  }, 25000);

  it.each(['garbage', 'nan_price', 'zero_price', 'too_large', 'hang'] as const)('never publishes a price when the upstream answers %s', async (mode) => {
    fake.fail('kraken', mode);
    t = await startApp({ ...fake.env(), PRICE_SOURCES: 'kraken', POLL_INTERVAL_MS: '200', SOURCE_TIMEOUT_MS: '300' });
    await waitFor(() => fake.requestCount('kraken') >= 1, 3000);
    await new Promise((r) => setTimeout(r, 600));
    expect((await fetch(`${t.url}/api/prices/BTC-USD`)).status).toBe(404);
    expect((await fetch(`${t.url}/health/ready`)).status).toBe(503);
  });

  it('honours Retry-After of a 429 before asking again', async () => {
    fake.fail('kraken', 'rate_limited', { retryAfter: '30' });
    t = await startApp({ ...fake.env(), PRICE_SOURCES: 'kraken,coingecko', POLL_INTERVAL_MS: '200' });
    await waitFor(async () => (await latest('BTC-USD'))?.source === 'coingecko', 3000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(fake.requestCount('kraken')).toBe(1);
  });
});

describe('admin refresh', () => {
  let fake: FakeUpstream;
  let t: TestApp;
  beforeAll(async () => {
    fake = await FakeUpstream.start();
    t = await startApp({ ...fake.env(), PRICE_SOURCES: 'coinbase', POLL_INTERVAL_MS: '3600000', ADMIN_TOKEN: 'an-admin-token-of-some-length' });
  });
  afterAll(async () => {
    await t.close();
    await fake.close();
  });

  const refresh = (auth?: string, query = '') =>
    fetch(`${t.url}/api/admin/refresh${query}`, { method: 'POST', headers: auth ? { Authorization: auth } : {} });

  it('refuses a request without a token or with a wrong one (401 UNAUTHORIZED)', async () => {
    expect(await (await refresh()).json()).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' });
    expect((await refresh('Bearer wrong-token')).status).toBe(401);
    expect((await refresh('Basic an-admin-token-of-some-length')).status).toBe(401);
  });

  it('polls now with the right token', async () => {
    await waitFor(() => fake.requestCount('coinbase') >= 2, 3000);
    fake.setPrice('BTC-USD', 99999);
    const res = await refresh('Bearer an-admin-token-of-some-length', '?pairs=BTC-USD');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ran: true, priced: [{ pair: 'BTC-USD', source: 'coinbase' }], unpriced: [] });
    expect(await (await fetch(`${t.url}/api/prices/BTC-USD`)).json()).toMatchObject({ price: 99999 });
    expect((await refresh('Bearer an-admin-token-of-some-length', '?pairs=NOPE')).status).toBe(400);
  });

  it('does not exist without ADMIN_TOKEN', async () => {
    const plain = await startApp();
    try {
      const res = await fetch(`${plain.url}/api/admin/refresh`, { method: 'POST', headers: { Authorization: 'Bearer x' } });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await plain.close();
    }
  });
});
