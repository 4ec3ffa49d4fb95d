import type { Tick } from '../shared/wire';
import { deltaMessage, encoded, encodedPrice, linkPrevious, priceMessage, WireShape } from './encoded';

const tick = (id: string): Tick => ({ id, pair: 'BTC-USD', price: 97000.5, timestamp: '2026-11-21T21:00:00.123Z', source: 'simulated' });

describe(encoded.name, () => {
  it('encodes a tick once per wire shape, whoever asks, and each shape apart', () => {
    const json = jest.fn((t: Tick) => JSON.stringify(t));
    const upper = jest.fn((t: Tick) => t.pair.toUpperCase());
    const [a, b] = [new WireShape('json', json), new WireShape('upper', upper)];
    const t = tick('1-0');
    for (let i = 0; i < 100; i++) {
      expect(encoded(t, a)).toBe(JSON.stringify(t));
      expect(encoded(t, b)).toBe('BTC-USD');
    }
    expect(json).toHaveBeenCalledTimes(1);
    expect(upper).toHaveBeenCalledTimes(1);
    encoded(tick('2-0'), a);
    expect(json).toHaveBeenCalledTimes(2);
  });

  it("gives every subscriber a tick's one message, and a conflated tick (skipped > 0) its own encoding", () => {
    const shape = new WireShape('json', (t: Tick) => JSON.stringify(t));
    const t = tick('3-0');
    expect(priceMessage(t)).toBe(priceMessage(t));
    expect(encodedPrice(priceMessage(t), shape)).toBe(encoded(t, shape));
    expect(encodedPrice({ type: 'price', tick: t, skipped: 4 }, shape)).toBe(JSON.stringify({ ...t, skipped: 4 }));
  });

  it('links a tick to its pair\'s previous one as a delta, but not one of another pair, nor one with a figure a delta cannot say (0 means unchanged)', () => {
    const previous = tick('4-0');
    const next = { ...tick('5-0'), price: 97001 };
    linkPrevious(next, previous);
    expect(deltaMessage(next)).toEqual({ type: 'delta', tick: next, baseId: '4-0', delta: ['BTC-USD', 97001] });
    const other = { ...tick('6-0'), pair: 'ETH-USD' };
    linkPrevious(other, previous);
    expect(deltaMessage(other)).toBeUndefined();
    const zero: Tick = { ...tick('7-0'), volume24h: 0 };
    linkPrevious(zero, previous);
    expect(deltaMessage(zero)).toBeUndefined();
  });
});
