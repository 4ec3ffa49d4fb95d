import { compareTickIds, isAfter } from './tick-order';

describe('compareTickIds', () => {
  it('orders by milliseconds first, then by sequence, numerically', () => {
    expect(compareTickIds('1000-0', '999-5')).toBeGreaterThan(0);
    expect(compareTickIds('1000-2', '1000-10')).toBeLessThan(0);
    expect(compareTickIds('1000-3', '1000-3')).toBe(0);
  });

  it('sorts an unparseable id before any real one', () => {
    expect(compareTickIds('garbage', '1-0')).toBeLessThan(0);
    expect(compareTickIds('1-0', 'garbage')).toBeGreaterThan(0);
  });

  it('takes every id as new when nothing was seen yet', () => {
    expect(isAfter('5-0', null)).toBe(true);
    expect(isAfter('5-0', '5-0')).toBe(false);
  });
});
