import type { Tick } from '../shared/wire';
import { LatestBodyCache, matchesEtag } from './latest-body';

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

describe(matchesEtag.name, () => {
  it('matches the tag itself, its weak form, one of a list and *, and nothing else', () => {
    expect(matchesEtag('"tick-1-0"', '"tick-1-0"')).toBe(true);
    expect(matchesEtag('W/"tick-1-0"', '"tick-1-0"')).toBe(true);
    expect(matchesEtag('"x", "tick-1-0"', '"tick-1-0"')).toBe(true);
    expect(matchesEtag('*', '"tick-1-0"')).toBe(true);
    expect(matchesEtag('"tick-1-1"', '"tick-1-0"')).toBe(false);
    expect(matchesEtag(undefined, '"tick-1-0"')).toBe(false);
  });
});
