import { fixtureJson } from '../../test/support/fixtures';
import { stubFetch, type StubbedFetch, type StubReply } from '../../test/support/stub-fetch';
import { krakenAltname, krakenResultKeys, KrakenSource } from './kraken.source';
import { SourceError, type SourceResult } from './price-source';

const BASE = 'http://kraken.test';
const FIXTURE = fixtureJson('kraken_rest_ticker.json') as { error: string[]; result: Record<string, { c: [string, string] }> };
const BTC_ENTRY = FIXTURE.result.XXBTZUSD;

const ticker = (entries: Record<string, unknown>): StubReply => ({ json: { error: [], result: entries } });
const withLast = (last: unknown): Record<string, unknown> => ({ ...BTC_ENTRY, c: [last, '0.001'] });

describe(KrakenSource.name, () => {
  let source: KrakenSource;
  let stub: StubbedFetch | undefined;
  const signal = new AbortController().signal;

  const serve = (reply: (url: URL) => StubReply): void => {
    stub = stubFetch(reply);
  };
  const failureOf = (result: SourceResult, pair: string): string | undefined => result.failed.find((f) => f.pair === pair)?.error.kind;

  beforeEach(() => {
    source = new KrakenSource({ baseUrl: BASE, timeoutMs: 1000, maxBytes: 65536 });
  });
  afterEach(() => stub?.restore());

  it('prices BTC-USD from c[0] of the XXBTZUSD entry when the answer is the fixture', async () => {
    serve(() => ({ json: FIXTURE }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result).toEqual({
      // b[0], a[0], o, and the 24 h halves of h, l, v of the fixture
      quotes: [{ pair: 'BTC-USD', price: 84036, bid: 84036, ask: 84036.1, open24h: 84380, high24h: 84914.8, low24h: 82832.3, volume24h: 3307.38151293 }],
      failed: [],
    });
    expect(stub?.calls[0].url.href).toBe(`${BASE}/0/public/Ticker?pair=XBTUSD`);
  });

  it('asks for several pairs in one request and matches legacy and altname result keys', async () => {
    serve(() => ticker({ XXBTZUSD: withLast('84000.1'), XETHZUSD: withLast('3500.5'), SOLUSD: withLast('150.25'), XBTUSDT: withLast('84001') }));
    const result = await source.fetch(['BTC-USD', 'ETH-USD', 'SOL-USD', 'BTC-USDT'], signal);
    expect(stub?.calls).toHaveLength(1);
    expect(stub?.calls[0].url.searchParams.get('pair')).toBe('XBTUSD,ETHUSD,SOLUSD,XBTUSDT');
    expect(result.quotes.map((q) => [q.pair, q.price])).toEqual([
      ['BTC-USD', 84000.1],
      ['ETH-USD', 3500.5],
      ['SOL-USD', 150.25],
      ['BTC-USDT', 84001],
    ]);
  });

  it('reports bad_shape and no quote when the only entry is under another pair key (XETHZUSD for BTC-USD)', async () => {
    serve(() => ticker({ XETHZUSD: withLast('3000.5') }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(result.failed[0].error).toMatchObject({ kind: 'bad_shape', message: 'kraken: BTC-USD: the answer is for XETHZUSD' });
  });

  it('leaves out a ticker field that is not a usable number and a crossed bid/ask, and keeps the price', async () => {
    serve(() => ticker({ XXBTZUSD: { ...withLast('84000'), b: ['84100', '1', '1'], a: ['84000.5', '1', '1'], v: ['1', 'NaN'], o: '-1' } }));
    const [quote] = (await source.fetch(['BTC-USD'], signal)).quotes;
    expect(quote).toEqual({ pair: 'BTC-USD', price: 84000, high24h: 84914.8, low24h: 82832.3 });
  });

  it.each([
    ['"NaN"', 'NaN'],
    ['"0"', '0'],
    ['a negative price', '-84036.0'],
    ['an empty string', ''],
    ['Infinity', 'Infinity'],
    ['a number too large to be finite', '1e400'],
    ['an object', { v: 1 }],
  ])('reports bad_price and no quote when c[0] is %s', async (_label, last) => {
    serve(() => ticker({ XXBTZUSD: withLast(last) }));
    const result = await source.fetch(['BTC-USD'], signal);
    expect(result.quotes).toEqual([]);
    expect(failureOf(result, 'BTC-USD')).toBe('bad_price');
  });

  it('reports bad_shape for the pair when its entry has no c array', async () => {
    serve(() => ticker({ XXBTZUSD: { a: BTC_ENTRY.c }, XETHZUSD: withLast('3500') }));
    const result = await source.fetch(['BTC-USD', 'ETH-USD'], signal);
    expect(failureOf(result, 'BTC-USD')).toBe('bad_shape');
    expect(result.quotes.map((q) => [q.pair, q.price])).toEqual([['ETH-USD', 3500]]);
  });

  it('reports unknown_pair when the answer has no entry for an asked pair', async () => {
    serve(() => ticker({ XXBTZUSD: withLast('84000') }));
    const result = await source.fetch(['BTC-USD', 'ETH-USD'], signal);
    expect(failureOf(result, 'ETH-USD')).toBe('unknown_pair');
  });

  it('throws bad_shape when the answer has no result object', async () => {
    serve(() => ({ json: { error: [] } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_shape' });
  });

  it('throws bad_shape when the answer is not an object', async () => {
    serve(() => ({ json: [1, 2] }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_shape' });
  });

  it('throws bad_json when the body is garbage', async () => {
    serve(() => ({ text: '<html>oops' }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'bad_json' });
  });

  it('reports unknown_pair and stops supporting the pair when Kraken answers EQuery:Unknown asset pair', async () => {
    serve(() => ({ json: { error: ['EQuery:Unknown asset pair'] } }));
    const result = await source.fetch(['FOO-USD'], signal);
    expect(failureOf(result, 'FOO-USD')).toBe('unknown_pair');
    expect(source.supports('FOO-USD')).toBe(false);
    expect(source.supports('BTC-USD')).toBe(true);
  });

  it('asks pair by pair and prices the known ones when one unknown pair fails the whole batch', async () => {
    serve((url) => {
      const pair = url.searchParams.get('pair');
      return pair === 'XBTUSD' ? ticker({ XXBTZUSD: withLast('84000') }) : { json: { error: ['EQuery:Unknown asset pair'] } };
    });
    const result = await source.fetch(['BTC-USD', 'FOO-USD'], signal);
    expect(result.quotes.map((q) => q.price)).toEqual([84000]);
    expect(failureOf(result, 'FOO-USD')).toBe('unknown_pair');
    expect(stub?.calls.map((c) => c.url.searchParams.get('pair'))).toEqual(['XBTUSD,FOOUSD', 'XBTUSD', 'FOOUSD']);

    const again = await source.fetch(['BTC-USD', 'FOO-USD'], signal);
    expect(stub?.calls.slice(3).map((c) => c.url.searchParams.get('pair'))).toEqual(['XBTUSD']);
    expect(again.quotes.map((q) => q.price)).toEqual([84000]);
    expect(failureOf(again, 'FOO-USD')).toBe('unknown_pair');
  });

  it('throws rate_limited when the error array says too many requests', async () => {
    serve(() => ({ json: { error: ['EGeneral:Too many requests'] } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'rate_limited' });
  });

  it('throws upstream_error when the error array holds anything else', async () => {
    serve(() => ({ json: { error: ['EService:Unavailable'] } }));
    const err: unknown = await source.fetch(['BTC-USD'], signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ kind: 'upstream_error', message: 'kraken: EService:Unavailable' });
  });

  it('throws rate_limited with retryAfterMs when the answer is a 429 with Retry-After', async () => {
    serve(() => ({ status: 429, json: { error: ['EAPI:Rate limit exceeded'] }, headers: { 'retry-after': '12' } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 12_000 });
  });

  it('throws http_status when the answer is a 502', async () => {
    serve(() => ({ status: 502, text: 'bad gateway' }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'http_status', status: 502 });
  });

  it('throws too_large when the body is over maxBytes', async () => {
    source = new KrakenSource({ baseUrl: BASE, timeoutMs: 1000, maxBytes: 1024 });
    serve(() => ticker({ XXBTZUSD: { ...withLast('84000'), pad: 'x'.repeat(2000) } }));
    await expect(source.fetch(['BTC-USD'], signal)).rejects.toMatchObject({ kind: 'too_large' });
  });
});

describe('Kraken pair names', () => {
  it('requests BTC as XBT and DOGE as XDG', () => {
    expect(['BTC-USD', 'ETH-EUR', 'DOGE-USD', 'SOL-USDT'].map(krakenAltname)).toEqual(['XBTUSD', 'ETHEUR', 'XDGUSD', 'SOLUSDT']);
  });

  it('accepts the altname and the X/Z-prefixed legacy names as result keys', () => {
    expect(krakenResultKeys('BTC-USD')).toEqual(expect.arrayContaining(['XBTUSD', 'XXBTZUSD']));
    expect(krakenResultKeys('ETH-BTC')).toEqual(expect.arrayContaining(['ETHXBT', 'XETHXXBT']));
    expect(krakenResultKeys('SOL-USD')).toEqual(expect.arrayContaining(['SOLUSD']));
    expect(krakenResultKeys('BTC-USDT')).toEqual(['XBTUSDT']);
  });
});
