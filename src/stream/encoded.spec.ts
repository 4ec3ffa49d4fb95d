import type { Tick } from '../shared/wire';
import { encoded, encodedPrice, priceMessage, WireShape } from './encoded';

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
});
