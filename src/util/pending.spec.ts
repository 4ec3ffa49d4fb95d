import { withPending, type Pending } from './pending';

describe('withPending', () => {
  it('holds one item as itself, then several in order in one array that grows in place', () => {
    const a = { n: 1 };
    const b = { n: 2 };
    const c = { n: 3 };
    let pending: Pending<{ n: number }>;
    pending = withPending(pending, a);
    expect(pending).toBe(a);
    pending = withPending(pending, b);
    expect(pending).toEqual([a, b]);
    const array = pending;
    pending = withPending(pending, c);
    expect(pending).toBe(array);
    expect(pending).toEqual([a, b, c]);
  });

  it('takes a Buffer as one item (not an array of bytes)', () => {
    const one = Buffer.from('one');
    const two = Buffer.from('two');
    expect(withPending(withPending(undefined, one), two)).toEqual([one, two]);
  });
});
