import { performance } from 'node:perf_hooks';

/** How long one slice of a pass may run, by which clock (performance.now; a spec's own in tests). */
export type Pace = { budgetMs: number; now: () => number };

/**
 * The pace of every sink's pass over its streams at the end of a turn (SSE, Socket.IO): ~10 ms of
 * writes per slice. REST p99 beside 5,000 streams ≤ 50 ms; larger slices let requests wait
 * longer, smaller ones cost the streams latency (benchmarks.md).
 */
export const WRITE_PACE: Pace = { budgetMs: 10, now: () => performance.now() };

/** What a pass does besides `each`: at the end of every slice, and with an item whose `each` threw. */
export type SliceHooks<T> = { sliceDone?: () => void; failed?: (item: T, err: unknown) => void };

/**
 * Calls `each` on every item in order, in slices of about `pace.budgetMs` (at least one item
 * each) with the event loop in between: the next slice is a `setImmediate`, so whatever I/O came
 * in meanwhile (requests, probes, new connections) is served before it. `sliceDone` runs at the
 * end of every slice. An item whose `each` throws goes to `failed` (one broken stream must not
 * leave the rest of the pass undone) and the slice goes on; without `failed` the error is thrown
 * there, its slice ends, and the rest of the pass still runs.
 */
export function inSlices<T>(items: readonly T[], each: (item: T) => void, pace: Pace, hooks: SliceHooks<T> = {}, from = 0): void {
  const deadline = pace.now() + pace.budgetMs;
  let i = from;
  try {
    while (i < items.length) {
      const item = items[i++];
      try {
        each(item);
      } catch (err) {
        if (hooks.failed === undefined) throw err;
        hooks.failed(item, err);
      }
      if (pace.now() >= deadline) break;
    }
  } finally {
    hooks.sliceDone?.();
    if (i < items.length) setImmediate(inSlices, items, each, pace, hooks, i);
  }
}
