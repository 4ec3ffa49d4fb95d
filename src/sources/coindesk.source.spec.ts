import { fixtureJson } from '../../test/support/fixtures';
import { stubFetch, type StubbedFetch, type StubReply } from '../../test/support/stub-fetch';
import { CoinDeskSource } from './coindesk.source';

const BASE = 'http://coindesk.test';
const HEAD = fixtureJson('coindesk_index_tick_head.json');
const MIN = fixtureJson('coindesk_index_tick_min.json');

describe(CoinDeskSource.name, () => {
  let source: CoinDeskSource;
  let stub: StubbedFetch | undefined;
  const signal = new AbortController().signal;

  const serve = (reply: (url: URL) => StubReply): void => {
    stub = stubFetch(reply);
  };

  beforeEach(() => {
    source = new CoinDeskSource({ baseUrl: BASE, timeoutMs: 1000, maxBytes: 65536, apiKey: 'secret-key' });
  });
  afterEach(() => stub?.restore());

  it('prices BTC-USD from VALUE with VALUE_LAST_UPDATE_TS as sourceTimestamp and sends the API key', async () => {
    serve(() => ({ json: HEAD }));
    await expect(source.fetch(['BTC-USD'], signal)).resolves.toEqual({
      quotes: [
        {
          pair: 'BTC-USD',
          price: 96353.9044445288,
          sourceTimestamp: new Date(1740304364 * 1000).toISOString(),
          open24h: 96353.9044445288 - -150.1372301191, // VALUE less MOVING_24_HOUR_CHANGE
        },
      ],
      failed: [],
    });
    const call = stub?.calls[0];
    expect(call?.url.pathname).toBe('/index/cc/v1/latest/tick');
    expect(call?.url.searchParams.get('market')).toBe('cadli');
    expect(call?.url.searchParams.get('instruments')).toBe('BTC-USD');
    expect(call?.headers.get('authorization')).toBe('Apikey secret-key');
  });

  it('prices BTC-EUR from the minimal fixture', async () => {
    serve(() => ({ json: MIN }));
    const result = await source.fetch(['BTC-EUR'], signal);
    expect(result.quotes).toEqual([{ pair: 'BTC-EUR', price: 70009.4455389552, sourceTimestamp: new Date(1744212053 * 1000).toISOString() }]);
  });

  it('reports bad_shape and no quote when the answer holds only another instrument', async () => {
    serve(() => ({ json: { Data: { 'ETH-USD': { VALUE: 3000.5 } }, Err: {} } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error).toMatchObject({ kind: 'bad_shape', message: 'coindesk: BTC-USD: the answer is for ETH-USD' });
  });

  it('asks for all instruments in one request', async () => {
    serve(() => ({ json: { Data: { 'BTC-USD': { VALUE: 97000 }, 'ETH-USD': { VALUE: 3500 } }, Err: {} } }));
    const result = await source.fetch(['BTC-USD', 'ETH-USD'], signal);
    expect(stub?.calls).toHaveLength(1);
    expect(stub?.calls[0].url.searchParams.get('instruments')).toBe('BTC-USD,ETH-USD');
    expect(result.quotes.map((q) => q.price)).toEqual([97000, 3500]);
  });

  it.each([[0], [-1], ['NaN'], [{}]])('reports bad_price and no quote when VALUE is %p', async (VALUE) => {
    serve(() => ({ json: { Data: { 'BTC-USD': { VALUE } }, Err: {} } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error.kind).toBe('bad_price');
  });

  it('reports bad_shape when the entry has no VALUE', async () => {
    serve(() => ({ json: { Data: { 'BTC-USD': { VALUE_FLAG: 'UP' } }, Err: {} } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.failed[0].error.kind).toBe('bad_shape');
  });

  it('reports unknown_pair for the instruments Err names and prices the others', async () => {
    serve(() => ({
      json: {
        Data: { 'BTC-USD': { VALUE: 97000 } },
        Err: { type: 2, message: 'Not found: market / instrument pairs', other_info: { param: 'instruments', values: ['FOO-USD'] } },
      },
    }));
    const result = await source.fetch(['BTC-USD', 'FOO-USD'], signal);
    expect(result.quotes).toEqual([{ pair: 'BTC-USD', price: 97000 }]);
    expect(result.failed.map((f) => [f.pair, f.error.kind])).toEqual([['FOO-USD', 'unknown_pair']]);
  });

  it('throws upstream_error when Err is not empty and names no instrument', async () => {
    serve(() => ({ json: { Data: {}, Err: { type: 1, message: 'You are over your rate limit' } } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'upstream_error', message: 'coindesk: You are over your rate limit' });
  });

  it('throws bad_shape when Data is not an object', async () => {
    serve(() => ({ json: { Data: [], Err: {} } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_shape' });
  });

  it('throws http_status when the key is refused with 401', async () => {
    serve(() => ({ status: 401, json: { Err: { type: 1, message: 'invalid key' } } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'http_status', status: 401 });
  });

  it('throws rate_limited with retryAfterMs when the answer is a 429 with Retry-After', async () => {
    serve(() => ({ status: 429, json: { Err: { type: 99 } }, headers: { 'retry-after': '1' } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 1000 });
  });
});
