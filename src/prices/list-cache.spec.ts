import { weakEtag } from '../http/fast-rest';
import { ApiError } from '../http/api-error';
import { loadConfig } from '../config/app-config';
import type { Tick } from '../shared/wire';
import { ListAnswerCache } from './list-cache';
import { ltpList, pricesList } from './price-lists';

const tick = (pair: string, id: string, price: number): Tick => ({ id, pair, price, timestamp: '2026-01-01T00:00:00.000Z', source: 'simulated' }) as Tick;

describe(ListAnswerCache.name, () => {
  const config = loadConfig({ PAIRS: 'BTC-USD,ETH-USD,SOL-USD' });
  const setup = (size?: number) => {
    const latest = new Map<string, Tick>([['BTC-USD', tick('BTC-USD', '1-0', 97000)]]);
    let builds = 0;
    const cache = new ListAnswerCache((pair) => latest.get(pair), size);
    const prices = (query: string) =>
      cache.answer(query, (reader) => {
        builds++;
        return pricesList(query === '' ? undefined : query, { config, prices: reader });
      });
    return { latest, cache, prices, builds: () => builds };
  };

  it('builds an answer once, with its length and Express weak ETag, and serves it again while its ticks are the latest', () => {
    const { prices, builds } = setup();
    const first = prices('BTC-USD');
    expect(first).toEqual({ status: 200, json: JSON.stringify({ prices: [tick('BTC-USD', '1-0', 97000)] }), length: first.json.length, etag: weakEtag(first.json) });
    expect(prices('BTC-USD')).toBe(first);
    expect(builds()).toBe(1);
  });

  it('builds again when a tick it shows changes, or a pair it found without a price gets one; not for a tick of another pair', () => {
    const { latest, prices, builds } = setup();
    const one = prices('BTC-USD');
    const both = prices('BTC-USD,ETH-USD');
    expect(both.status).toBe(206);
    latest.set('SOL-USD', tick('SOL-USD', '2-0', 150));
    expect(prices('BTC-USD')).toBe(one);
    expect(prices('BTC-USD,ETH-USD')).toBe(both);
    expect(builds()).toBe(2);
    latest.set('ETH-USD', tick('ETH-USD', '3-0', 3500));
    const filled = prices('BTC-USD,ETH-USD');
    expect(filled.status).toBe(200);
    expect(filled.etag).not.toBe(both.etag);
    expect(prices('BTC-USD')).toBe(one);
    latest.set('BTC-USD', tick('BTC-USD', '4-0', 97001));
    const moved = prices('BTC-USD');
    expect(JSON.parse(moved.json)).toEqual({ prices: [tick('BTC-USD', '4-0', 97001)] });
    expect(moved.etag).not.toBe(one.etag);
    expect(builds()).toBe(4);
  });

  it('keeps no error (a malformed query throws every time) and at most its size of queries', () => {
    const { cache, prices, builds } = setup(2);
    expect(() => prices('nope')).toThrow(ApiError);
    expect(() => prices('nope')).toThrow(ApiError);
    expect(cache.held).toBe(0);
    const a = prices('BTC-USD');
    prices('ETH-USD');
    prices('BTC-USD,ETH-USD');
    expect(cache.held).toBe(2);
    // The oldest query was forgotten: built again.
    expect(prices('BTC-USD')).not.toBe(a);
    expect(builds()).toBe(6);
  });

  it('serves the LTP list the same way', () => {
    const { latest, cache } = setup();
    const ltp = () => cache.answer('ltp', (reader) => ltpList('BTC/USD', { config, prices: reader }));
    const first = ltp();
    expect(JSON.parse(first.json)).toEqual({ ltp: [{ pair: 'BTC/USD', amount: 97000 }] });
    expect(ltp()).toBe(first);
    latest.set('BTC-USD', tick('BTC-USD', '5-0', 96000));
    expect(JSON.parse(ltp().json)).toEqual({ ltp: [{ pair: 'BTC/USD', amount: 96000 }] });
  });
});
