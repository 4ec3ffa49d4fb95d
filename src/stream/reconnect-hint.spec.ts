import { reconnectHint } from './reconnect-hint';

describe('reconnectHint', () => {
  it('spans 0..spread inclusive, in whole milliseconds', () => {
    expect(reconnectHint(1000, () => 0)).toBe(0);
    expect(reconnectHint(1000, () => 0.5)).toBe(500);
    expect(reconnectHint(1000, () => 0.999999999)).toBe(1000);
    expect(reconnectHint(3, () => 0.3)).toBe(1);
  });

  it('stays within bounds whatever random returns, and is 0 without a spread', () => {
    for (const r of [-1, 1, 2, Number.NaN]) {
      const hint = reconnectHint(1000, () => r);
      expect(Number.isInteger(hint)).toBe(true);
      expect(hint).toBeGreaterThanOrEqual(0);
      expect(hint).toBeLessThanOrEqual(1000);
    }
    expect(reconnectHint(0, () => 0.9)).toBe(0);
  });
});
