import { Logger } from '@nestjs/common';
import { FakeUpstream, type UpstreamName } from '../../test/support/fake-upstream';
import { loadConfig } from '../config/app-config';
import { sourceErrorOf } from '../../test/support/source-error';
import { SourceError, type PriceSource } from './price-source';
import { SourceRegistry } from './source-registry';

const UPSTREAMS: UpstreamName[] = ['kraken', 'coinbase', 'coingecko', 'coindesk'];
const PAIRS = ['BTC-USD', 'ETH-USD'];
const TIMEOUT_MS = 300;
const API_KEY = 'test-key';

/** The real source classes, built from configuration as the app builds them, against the fake over HTTP. */
describe('price sources over HTTP', () => {
  let fake: FakeUpstream;
  let sources: Map<UpstreamName, PriceSource>;
  const signal = new AbortController().signal;

  beforeAll(async () => {
    fake = await FakeUpstream.start({ coindeskApiKey: API_KEY, largeBodyBytes: 512 * 1024 });
  });
  afterAll(() => fake.close());

  beforeEach(() => {
    fake.recover();
    fake.resetCounts();
    fake.setPrice('BTC-USD', 97000.5);
    fake.setPrice('ETH-USD', 3500.25);
    const config = loadConfig({
      ...fake.env(),
      PAIRS: PAIRS.join(','),
      PRICE_SOURCES: UPSTREAMS.join(','),
      COINDESK_API_KEY: API_KEY,
      SOURCE_TIMEOUT_MS: String(TIMEOUT_MS),
      SOURCE_MAX_BODY_BYTES: '65536',
    });
    const registry = SourceRegistry.fromConfig(config);
    sources = new Map(registry.sources.map((s) => [s.name as UpstreamName, s]));
  });

  const source = (name: UpstreamName): PriceSource => {
    const s = sources.get(name);
    if (!s) throw new Error(`no ${name} source`);
    return s;
  };


  describe.each(UPSTREAMS)('%s', (name) => {
    it('prices every pair when the upstream answers', async () => {
      const result = await source(name).fetch(PAIRS, signal);
      expect(result.failed).toEqual([]);
      expect(result.quotes.map((q) => [q.pair, q.price])).toEqual([
        ['BTC-USD', 97000.5],
        ['ETH-USD', 3500.25],
      ]);
      expect(fake.requestCount(name)).toBe(source(name).batches ? 1 : PAIRS.length);
    });

    it('follows the price when the upstream moves it', async () => {
      await source(name).fetch(['BTC-USD'], signal);
      fake.setPrice('BTC-USD', 97100.75);
      const result = await source(name).fetch(['BTC-USD'], signal);
      expect(result.quotes[0].price).toBe(97100.75);
    });

    it('reports unknown_pair for a pair the upstream does not list and prices the rest', async () => {
      fake.setPrice('SOL-USD', 150.5);
      fake.removePair('ETH-USD');
      const result = await source(name).fetch(['BTC-USD', 'ETH-USD'], signal);
      expect(result.quotes.map((q) => q.pair)).toEqual(['BTC-USD']);
      expect(result.failed.map((f) => [f.pair, f.error.kind])).toEqual([['ETH-USD', 'unknown_pair']]);
    });

    it('throws http_status when the upstream answers 500', async () => {
      fake.fail(name, 'http_500');
      const err = await sourceErrorOf(source(name).fetch(PAIRS, signal));
      expect([err.kind, err.status]).toEqual(['http_status', 500]);
    });

    it('throws rate_limited with Retry-After when the upstream answers 429', async () => {
      fake.fail(name, 'rate_limited', { retryAfter: '17' });
      const err = await sourceErrorOf(source(name).fetch(PAIRS, signal));
      expect([err.kind, err.retryAfterMs]).toEqual(['rate_limited', 17_000]);
    });

    it('throws timeout within about SOURCE_TIMEOUT_MS when the upstream hangs', async () => {
      fake.fail(name, 'hang');
      const started = Date.now();
      const err = await sourceErrorOf(source(name).fetch(PAIRS, signal));
      expect(err.kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
    });

    it('throws bad_json when the upstream answers garbage', async () => {
      fake.fail(name, 'garbage');
      const err = await sourceErrorOf(source(name).fetch(PAIRS, signal));
      expect(err.kind).toBe('bad_json');
    });

    it('throws too_large when the body passes SOURCE_MAX_BODY_BYTES', async () => {
      fake.fail(name, 'too_large');
      const err = await sourceErrorOf(source(name).fetch(PAIRS, signal));
      expect(err.kind).toBe('too_large');
    });

    it.each(['nan_price', 'zero_price'] as const)('gives no price and reports bad_price when the upstream serves %s', async (mode) => {
      fake.fail(name, mode);
      const result = await source(name).fetch(PAIRS, signal);
      expect(result.quotes).toEqual([]);
      expect(result.failed.map((f) => [f.pair, f.error.kind])).toEqual([
        ['BTC-USD', 'bad_price'],
        ['ETH-USD', 'bad_price'],
      ]);
    });

    it('serves again when a failure was set for one request only', async () => {
      fake.fail(name, 'http_500', { times: source(name).batches ? 1 : PAIRS.length });
      await expect(source(name).fetch(PAIRS, signal)).rejects.toBeInstanceOf(SourceError);
      const result = await source(name).fetch(PAIRS, signal);
      expect(result.quotes).toHaveLength(2);
    });
  });

  it('sends the CoinDesk API key and gets 401 with a wrong one', async () => {
    await source('coindesk').fetch(['BTC-USD'], signal);
    expect(fake.requests('coindesk')[0].headers.authorization).toBe(`Apikey ${API_KEY}`);

    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const wrong = SourceRegistry.fromConfig(loadConfig({ ...fake.env(), PRICE_SOURCES: 'coindesk', COINDESK_API_KEY: 'nope' }));
    warn.mockRestore();
    const err = await sourceErrorOf(wrong.sources[0].fetch(['BTC-USD'], signal));
    expect([err.kind, err.status]).toEqual(['http_status', 401]);
  });

  it('counts requests per path', async () => {
    await source('kraken').fetch(PAIRS, signal);
    await source('coinbase').fetch(PAIRS, signal);
    expect(fake.requestsOn('/0/public/Ticker')).toBe(1);
    expect(fake.requestsOn('/v2/prices/BTC-USD/spot')).toBe(1);
    expect(fake.requestsOn('/v2/prices/ETH-USD/spot')).toBe(1);
    expect(fake.requestsOn('/api/v3/simple/price')).toBe(0);
  });
});
