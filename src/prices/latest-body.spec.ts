import type { Tick } from '../shared/wire';
import { isFresh, LatestBodyCache } from './latest-body';

const tick = (id: string, price: number): Tick => ({ id, pair: 'BTC-USD', price, timestamp: '2026-11-21T21:00:00.123Z', source: 'simulated' });

describe(LatestBodyCache.name, () => {
  it('serialises a tick once and hands the same body back until the tick is replaced', () => {
    const shape = jest.fn((t: Tick) => ({ ...t, symbol: 'BTC' }));
    const cache = new LatestBodyCache('current', shape);
    const first = tick('1-0', 100);
    const a = cache.get(first);
    expect(cache.get(first)).toBe(a);
    expect(shape).toHaveBeenCalledTimes(1);
    expect(JSON.parse(a.json)).toEqual({ ...first, symbol: 'BTC' });
    expect(a).toMatchObject({ etag: '"current-1-0"', length: Buffer.byteLength(a.json) });
    const b = cache.get(tick('2-0', 101));
    expect(b.etag).toBe('"current-2-0"');
    expect(shape).toHaveBeenCalledTimes(2);
  });
});

describe(isFresh.name, () => {
  const etag = '"tick-1-0"';
  it('matches the tag itself, its weak form, one of a list and *, and nothing else', () => {
    expect(isFresh({ 'if-none-match': '"tick-1-0"' }, etag)).toBe(true);
    expect(isFresh({ 'if-none-match': 'W/"tick-1-0"' }, etag)).toBe(true);
    expect(isFresh({ 'if-none-match': '"x", "tick-1-0"' }, etag)).toBe(true);
    expect(isFresh({ 'if-none-match': '*' }, etag)).toBe(true);
    expect(isFresh({ 'if-none-match': '"tick-1-1"' }, etag)).toBe(false);
    expect(isFresh({}, etag)).toBe(false);
    expect(isFresh({ 'if-modified-since': 'Tue, 01 Dec 2026 14:00:00 GMT' }, etag)).toBe(false);
  });

  it('asks for the body again when the request says Cache-Control: no-cache, as Express does', () => {
    expect(isFresh({ 'if-none-match': etag, 'cache-control': 'no-cache' }, etag)).toBe(false);
    expect(isFresh({ 'if-none-match': etag, 'cache-control': 'max-age=0' }, etag)).toBe(true);
  });
});
