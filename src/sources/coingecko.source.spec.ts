import { fixtureJson } from '../../test/support/fixtures';
import { stubFetch, type StubbedFetch, type StubReply } from '../../test/support/stub-fetch';
import { CoinGeckoSource } from './coingecko.source';

const BASE = 'http://coingecko.test';
const FIXTURE = fixtureJson('coingecko_simple_price.json') as Record<string, Record<string, number>>;

describe(CoinGeckoSource.name, () => {
  let source: CoinGeckoSource;
  let stub: StubbedFetch | undefined;
  const signal = new AbortController().signal;

  const serve = (reply: (url: URL) => StubReply): void => {
    stub = stubFetch(reply);
  };

  beforeEach(() => {
    source = new CoinGeckoSource({ baseUrl: BASE, timeoutMs: 1000, maxBytes: 65536 });
  });
  afterEach(() => stub?.restore());

  it('prices BTC-USD with last_updated_at as sourceTimestamp when the answer is the fixture', async () => {
    serve(() => ({ json: FIXTURE }));
    await expect(source.fetch(['BTC-USD'], signal)).resolves.toEqual({
      quotes: [
        {
          pair: 'BTC-USD',
          price: 103663,
          sourceTimestamp: new Date(1747407859 * 1000).toISOString(),
          // usd_24h_vol is in USD and usd_24h_change in percent: the base volume and open follow
          volume24h: 31366805440.52759 / 103663,
          open24h: 103663 / (1 + 1.6371141415010508 / 100),
        },
      ],
      failed: [],
    });
    const url = stub?.calls[0].url;
    expect(url?.pathname).toBe('/api/v3/simple/price');
    expect(Object.fromEntries(url?.searchParams ?? [])).toEqual({
      ids: 'bitcoin',
      vs_currencies: 'usd',
      include_last_updated_at: 'true',
      include_24hr_vol: 'true',
      include_24hr_change: 'true',
    });
  });

  it('reports bad_shape and no quote when the answer holds only another coin', async () => {
    serve(() => ({ json: { ethereum: { usd: 3000.5, last_updated_at: 1747407859 } } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error).toMatchObject({ kind: 'bad_shape', message: 'coingecko: BTC-USD: the answer is for ethereum' });
  });

  it('asks for all ids and currencies in one request and maps each pair back', async () => {
    serve(() => ({ json: { bitcoin: { usd: 97000, eur: 90000, last_updated_at: 1 }, ethereum: { usd: 3500, eur: 3200 } } }));
    const result = await source.fetch(['BTC-USD', 'ETH-USD', 'BTC-EUR'], signal);
    expect(stub?.calls).toHaveLength(1);
    expect(stub?.calls[0].url.searchParams.get('ids')).toBe('bitcoin,ethereum');
    expect(stub?.calls[0].url.searchParams.get('vs_currencies')).toBe('usd,eur');
    expect(result.quotes.map((q) => [q.pair, q.price])).toEqual([
      ['BTC-USD', 97000],
      ['ETH-USD', 3500],
      ['BTC-EUR', 90000],
    ]);
    expect(result.quotes[1].sourceTimestamp).toBeUndefined();
  });

  it('supports only bases it has an id for', () => {
    expect(['BTC-USD', 'SOL-EUR', 'USDC-USD', 'FOO-USD'].map((p) => source.supports(p))).toEqual([true, true, true, false]);
  });

  it('reports unknown_pair without a request when no pair has an id', async () => {
    serve(() => ({ json: {} }));
    const result = await source.fetch(['FOO-USD'], signal);
    expect(result.failed[0].error.kind).toBe('unknown_pair');
    expect(stub?.calls).toHaveLength(0);
  });

  it('reports unknown_pair when the id or the currency is missing from the answer', async () => {
    serve(() => ({ json: { bitcoin: { usd: 97000 } } }));
    const result = await source.fetch(['BTC-USD', 'BTC-JPY', 'ETH-USD'], signal);
    expect(result.quotes).toEqual([{ pair: 'BTC-USD', price: 97000 }]);
    expect(result.failed.map((f) => [f.pair, f.error.kind])).toEqual([
      ['BTC-JPY', 'unknown_pair'],
      ['ETH-USD', 'unknown_pair'],
    ]);
  });

  it.each([[0], [-3], ['NaN'], [null], [{}]])('reports a failure and no quote when the price is %p', async (usd) => {
    serve(() => ({ json: { bitcoin: { usd } } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error.kind).toBe(usd === null ? 'bad_shape' : 'bad_price');
  });

  it('reports bad_shape when an entry is not an object', async () => {
    serve(() => ({ json: { bitcoin: 97000 } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.failed[0].error.kind).toBe('bad_shape');
  });

  it('throws upstream_error when the body reports an error status', async () => {
    serve(() => ({ json: { status: { error_code: 10002, error_message: 'API Key Missing' } } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'upstream_error' });
  });

  it('throws bad_shape when the answer is not an object', async () => {
    serve(() => ({ json: 'bitcoin' }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_shape' });
  });

  it('throws rate_limited with retryAfterMs when the answer is a 429 with a Retry-After date', async () => {
    const at = new Date(Date.now() + 60_000).toUTCString();
    serve(() => ({ status: 429, json: { status: { error_code: 429, error_message: "You've exceeded the Rate Limit" } }, headers: { 'retry-after': at } }));
    const err: unknown = await source.fetch(['BTC-USD'], signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'rate_limited' });
    expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(55_000);
  });

  it('throws bad_json when the body is garbage', async () => {
    serve(() => ({ text: '{"bitcoin":' }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_json' });
  });
});
