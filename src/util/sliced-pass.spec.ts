import { inSlices, type Pace } from './sliced-pass';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A clock that moves one millisecond per item handled. */
function pace(budgetMs: number): Pace & { tick(): void } {
  let t = 0;
  return { budgetMs, now: () => t, tick: () => t++ };
}

describe(inSlices.name, () => {
  it('handles every item once, in order, in slices of the budget with the event loop in between', async () => {
    const clock = pace(3);
    const seen: number[] = [];
    const slices: number[][] = [];
    let slice: number[] = [];
    const between: string[] = [];
    inSlices(
      Array.from({ length: 10 }, (_, i) => i),
      (n) => {
        seen.push(n);
        slice.push(n);
        clock.tick();
        // Work that arrives meanwhile (a request) is served before the next slice.
        if (n === 1) setImmediate(() => between.push(`after slice ${slices.length}`));
      },
      clock,
      {
        sliceDone: () => {
          slices.push(slice);
          slice = [];
        },
      },
    );
    expect(slices).toEqual([[0, 1, 2]]);
    for (let i = 0; i < 4; i++) await turn();
    expect(slices).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(between).toEqual(['after slice 1']);
  });

  it('takes at least one item per slice, however slow an item is', async () => {
    let t = 0;
    const slices: number[] = [];
    let count = 0;
    inSlices(
      [1, 2, 3],
      () => {
        count++;
        t += 100;
      },
      { budgetMs: 5, now: () => t },
      { sliceDone: () => slices.push(count) },
    );
    for (let i = 0; i < 3; i++) await turn();
    expect(slices).toEqual([1, 2, 3]);
  });

  it('ends a slice at an item that throws, and still runs the rest', async () => {
    const seen: number[] = [];
    const each = (n: number) => {
      seen.push(n);
      if (n === 2) throw new Error('broken');
    };
    expect(() => inSlices([1, 2, 3], each, pace(100))).toThrow('broken');
    expect(seen).toEqual([1, 2]);
    await turn();
    expect(seen).toEqual([1, 2, 3]);
  });

  it('hands an item that throws to `failed` and goes on with the slice', () => {
    const seen: number[] = [];
    const failed: [number, string][] = [];
    const each = (n: number) => {
      seen.push(n);
      if (n === 2) throw new Error('broken');
    };
    inSlices([1, 2, 3], each, pace(100), { failed: (n, err) => failed.push([n, (err as Error).message]) });
    expect(seen).toEqual([1, 2, 3]);
    expect(failed).toEqual([[2, 'broken']]);
  });
});
