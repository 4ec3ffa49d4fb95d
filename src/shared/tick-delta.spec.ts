import { applyDelta, tickDelta } from './tick-delta';
import type { Tick } from './wire';

const base: Tick = {
  id: '1765000000000-0',
  pair: 'BTC-USD',
  price: 97000.5,
  timestamp: '2026-12-06T11:00:00.000Z',
  sourceTimestamp: '2026-12-06T10:59:59.950Z',
  source: 'kraken',
  bid: 97000.4,
  ask: 97000.5,
  open24h: 95000,
  high24h: 98000,
  low24h: 94000,
  volume24h: 1234.5,
};

describe('tick deltas', () => {
  it('carries only what changed, times as milliseconds after the base\'s, and trailing unchanged fields not at all', () => {
    const next: Tick = { ...base, id: '1765000001000-0', price: 97001, timestamp: '2026-12-06T11:00:01.000Z', sourceTimestamp: '2026-12-06T11:00:00.990Z', bid: 97000.9 };
    expect(tickDelta(base, next)).toEqual(['BTC-USD', 97001, 1000, 1040, 97000.9]);
    expect(applyDelta(base, next.id, tickDelta(base, next))).toEqual(next);
  });

  it('says nothing but the pair when nothing but the id changed', () => {
    expect(tickDelta(base, { ...base, id: '1765000001000-0' })).toEqual(['BTC-USD']);
    expect(applyDelta(base, '1765000001000-0', ['BTC-USD'])).toEqual({ ...base, id: '1765000001000-0' });
  });

  it('expresses a removed field as null and an added one as its value; a time that does not read back from milliseconds as its string', () => {
    const { bid: _bid, ask: _ask, ...rest } = base;
    const next: Tick = { ...rest, id: '2-0', sourceTimestamp: '2026-12-06T11:00:00.123456Z', source: 'composite', sources: ['kraken', 'coinbase'] };
    const delta = tickDelta(base, next);
    expect(delta).toEqual(['BTC-USD', 0, 0, '2026-12-06T11:00:00.123456Z', null, null, 0, 0, 0, 0, 'composite', ['kraken', 'coinbase']]);
    expect(applyDelta(base, '2-0', delta)).toEqual(next);
    const back = tickDelta(next, { ...next, id: '3-0', bid: 1 });
    expect(back).toEqual(['BTC-USD', 0, 0, 0, 1]);
    expect(applyDelta(next, '3-0', back)).toEqual({ ...next, id: '3-0', bid: 1 });
  });

  it('round-trips random walks of every field exactly', () => {
    let prev = base;
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let i = 1; i < 500; i++) {
      const t: Tick = { ...prev, id: `${1765000000000 + i}-0`, timestamp: new Date(Date.parse(prev.timestamp) + Math.floor(rnd() * 2000)).toISOString() };
      if (rnd() < 0.7) t.price = Math.round(rnd() * 1e7) / 100 + 0.01;
      if (rnd() < 0.5) t.bid = rnd() * 1e5 + 1;
      if (rnd() < 0.1) delete t.ask;
      else if (rnd() < 0.5) t.ask = rnd() * 1e5 + 1;
      if (rnd() < 0.2) t.volume24h = rnd() * 1e4 + 0.1;
      expect(applyDelta(prev, t.id, tickDelta(prev, t))).toEqual(t);
      prev = t;
    }
  });

  it('never makes a wrong tick of a delta that is not one: another pair, wrong types, a removed price', () => {
    expect(applyDelta(base, '2-0', ['ETH-USD', 1])).toBeNull();
    expect(applyDelta(base, '2-0', { pair: 'BTC-USD' })).toBeNull();
    expect(applyDelta(base, '2-0', ['BTC-USD', '97000'])).toBeNull();
    expect(applyDelta(base, '2-0', ['BTC-USD', -1])).toBeNull();
    expect(applyDelta(base, '2-0', ['BTC-USD', null])).toBeNull();
    expect(applyDelta(base, '2-0', ['BTC-USD', 0, true])).toBeNull();
    expect(applyDelta(base, '2-0', ['BTC-USD', ...new Array<number>(12).fill(0)])).toBeNull();
  });

  it('drops a conflated base\'s `skipped` from the tick it makes', () => {
    expect(applyDelta({ ...base, skipped: 3 }, '2-0', ['BTC-USD', 1])).toEqual({ ...base, id: '2-0', price: 1 });
  });
});
