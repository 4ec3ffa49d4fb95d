import { fixtureJson } from '../../test/support/fixtures';
import { stubFetch, type StubbedFetch, type StubReply } from '../../test/support/stub-fetch';
import { CoinbaseSource } from './coinbase.source';

const BASE = 'http://coinbase.test';
const FIXTURE = fixtureJson('coinbase_spot.json') as { data: { amount: string; base: string; currency: string } };
const spot = (data: Record<string, unknown>): StubReply => ({ json: { data: { ...FIXTURE.data, ...data } } });

describe(CoinbaseSource.name, () => {
  let source: CoinbaseSource;
  let stub: StubbedFetch | undefined;
  const signal = new AbortController().signal;

  const serve = (reply: (url: URL) => StubReply): void => {
    stub = stubFetch(reply);
  };

  beforeEach(() => {
    source = new CoinbaseSource({ baseUrl: BASE, timeoutMs: 1000, maxBytes: 65536 });
  });
  afterEach(() => stub?.restore());

  it('prices BTC-USD from data.amount when the answer is the fixture', async () => {
    serve(() => ({ json: FIXTURE }));
    await expect(source.fetch(['BTC-USD'], signal)).resolves.toEqual({ quotes: [{ pair: 'BTC-USD', price: 83894.035 }], failed: [] });
    expect(stub?.calls[0].url.href).toBe(`${BASE}/v2/prices/BTC-USD/spot`);
  });

  it('sends one request per pair when asked for several', async () => {
    serve((url) => {
      const [base, currency] = url.pathname.split('/')[3].split('-');
      return spot({ base, currency, amount: base === 'BTC' ? '84000' : '3500' });
    });
    const result = await source.fetch(['BTC-USD', 'ETH-USD'], signal);
    expect(stub?.calls.map((c) => c.url.pathname)).toEqual(['/v2/prices/BTC-USD/spot', '/v2/prices/ETH-USD/spot']);
    expect(result.quotes).toEqual([
      { pair: 'BTC-USD', price: 84000 },
      { pair: 'ETH-USD', price: 3500 },
    ]);
  });

  it.each([['NaN'], ['0'], ['-1'], ['1,234.5'], [''], [null]])('reports bad_price or bad_shape and no quote when amount is %p', async (amount) => {
    serve(() => spot({ amount }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error.kind).toBe(amount === null ? 'bad_shape' : 'bad_price');
  });

  it('reports bad_shape when the answer is for another pair', async () => {
    serve(() => spot({ base: 'ETH' }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error).toMatchObject({ kind: 'bad_shape', message: 'coinbase: BTC-USD: the answer is for ETH-USD' });
  });

  it('reports bad_shape when base or currency is missing', async () => {
    serve(() => ({ json: { data: { amount: '84000' } } }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.failed[0].error.kind).toBe('bad_shape');
  });

  it('throws bad_shape when the answer has no data object', async () => {
    serve(() => ({ json: { errors: [] } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_shape' });
  });

  it('reports unknown_pair without throwing when Coinbase answers 404', async () => {
    serve(() => ({ status: 404, json: { errors: [{ id: 'not_found', message: 'Invalid currency' }] } }));
    const result = await source.fetch(['FOO-USD'], signal);
    expect(result.failed).toEqual([{ pair: 'FOO-USD', error: expect.objectContaining({ kind: 'unknown_pair' }) }]);
  });

  it('throws rate_limited with retryAfterMs when the answer is a 429 with Retry-After', async () => {
    serve(() => ({ status: 429, json: { errors: [{ id: 'rate_limit_exceeded' }] }, headers: { 'retry-after': '3' } }));
    await expect(source.fetch(['BTC-USD', 'ETH-USD'], signal)).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 3000 });
  });

  it('keeps the prices it got and reports the failed pair when only one of several requests fails', async () => {
    serve((url) => (url.pathname.includes('ETH') ? { status: 500, text: 'oops' } : { json: FIXTURE }));
    const result = await source.fetch(['BTC-USD', 'ETH-USD'], signal);
    expect(result.quotes).toEqual([{ pair: 'BTC-USD', price: 83894.035 }]);
    expect(result.failed).toEqual([{ pair: 'ETH-USD', error: expect.objectContaining({ kind: 'http_status', status: 500 }) }]);
  });

  it('throws bad_json when the body is garbage', async () => {
    serve(() => ({ text: 'not json' }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_json' });
  });

  it('throws too_large when the body is over maxBytes', async () => {
    source = new CoinbaseSource({ baseUrl: BASE, timeoutMs: 1000, maxBytes: 1024 });
    serve(() => spot({ pad: 'x'.repeat(4000) }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'too_large' });
  });
});
