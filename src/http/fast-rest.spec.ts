import { plainTarget, weakEtag } from './fast-rest';
import { RestRateLimit } from './rate-limit';
import { throttlerKey, WindowThrottlerStorage } from './window-throttler.storage';

describe('plainTarget', () => {
  it('splits what Express reads as it is, and leaves anything else to Express', () => {
    expect(plainTarget('/api/prices?pairs=BTC-USD&x=?')).toEqual({ path: '/api/prices', query: 'pairs=BTC-USD&x=?' });
    expect(plainTarget('/api/prices/BTC-USD')).toEqual({ path: '/api/prices/BTC-USD', query: undefined });
    for (const url of ['/api/prices?pairs=BTC-USD#x', '/api/prices?pairs=a b', '/api/prices?p=\u00a0', 'http://host/api/prices', `/api/prices?pairs=${'A'.repeat(8200)}`]) {
      expect(plainTarget(url)).toBeUndefined();
    }
  });
});

describe('weakEtag', () => {
  it("is Express' default ETag (the etag package, weak)", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const etag = require('etag') as (body: Buffer, options: { weak: boolean }) => string;
    for (const body of ['', '{"prices":[]}', JSON.stringify({ ltp: [{ pair: 'BTC/USD', amount: 97000.5 }], note: 'é€' })]) {
      expect(weakEtag(body)).toBe(etag(Buffer.from(body), { weak: true }));
    }
  });
});

describe(RestRateLimit.name, () => {
  it('counts in the storage the guard uses, with its key and headers, and refuses past the limit with Retry-After', async () => {
    let now = 1_000_000;
    const storage = new WindowThrottlerStorage(() => now);
    const limit = new RestRateLimit(storage, 2);
    const route = { controller: 'PricesController', method: 'list' };
    const first: string[] = [];
    expect(limit.admit(route, '::ffff:10.0.0.1', first)).toBe(true);
    expect(first).toEqual(['X-RateLimit-Limit', '2', 'X-RateLimit-Remaining', '1', 'X-RateLimit-Reset', '60']);
    // The guard's key for the same route and client (an IPv4-mapped address normalised) is the same record.
    const guardKey = throttlerKey({ getClass: () => ({ name: 'PricesController' }), getHandler: () => ({ name: 'list' }) }, '10.0.0.1', 'default');
    expect((await storage.increment(guardKey, 60_000, 2, 60_000)).totalHits).toBe(2);
    const refused: string[] = [];
    now += 1000;
    expect(limit.admit(route, '10.0.0.1', refused)).toBe(false);
    expect(refused).toEqual(['Retry-After', '60']);
    expect(limit.moduleOptions()).toMatchObject({ throttlers: [{ name: 'default', ttl: 60_000, limit: 2 }], storage, generateKey: throttlerKey });
  });
});
