import { RECONNECT_HINT_FLOOR_MS, reconnectHint } from './reconnect-hint';

describe('reconnectHint', () => {
  it('spans floor..floor + spread inclusive, in whole milliseconds', () => {
    expect(RECONNECT_HINT_FLOOR_MS).toBe(250);
    expect(reconnectHint(1000, () => 0)).toBe(250);
    expect(reconnectHint(1000, () => 0.5)).toBe(750);
    expect(reconnectHint(1000, () => 0.999999999)).toBe(1250);
    expect(reconnectHint(3, () => 0.3)).toBe(251);
  });

  it('stays within bounds whatever random returns, and is the floor without a spread (never 0: an EventSource keeps it)', () => {
    for (const r of [-1, 1, 2, Number.NaN]) {
      const hint = reconnectHint(1000, () => r);
      expect(Number.isInteger(hint)).toBe(true);
      expect(hint).toBeGreaterThanOrEqual(250);
      expect(hint).toBeLessThanOrEqual(1250);
    }
    expect(reconnectHint(0, () => 0.9)).toBe(250);
  });
});
