import { SlotCounter } from './slots';

describe(SlotCounter.name, () => {
  it('refuses past the total and past an address\' share, and gives slots back', () => {
    const c = new SlotCounter(3, 2);
    expect([c.take('a'), c.take('a'), c.take('a')]).toEqual([null, null, 'ip']);
    expect([c.take('b'), c.take('c')]).toEqual([null, 'total']);
    expect(c.counts()).toEqual({ total: 3, ips: 2 });
    c.give('a');
    expect(c.take('c')).toBe(null);
    // A worker that exits gives back all it held at once; never more than was taken.
    c.give('a', 5);
    c.give('nobody');
    expect(c.counts()).toEqual({ total: 2, ips: 2 });
  });
});
