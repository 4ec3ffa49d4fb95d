/**
 * Collects what one event-loop turn adds and hands it over once, when the turn ends (one
 * `setImmediate` however many are added): a turn's frames in one write, a flood of frames
 * coalesced into one publish. Items are handed over in the order they were added; with
 * `unique`, an item added again in the same turn is handed over once (a Set's cost per add,
 * which a caller that knows its items are new, such as the SSE sinks, does not pay). With
 * `gatherMs`, it gathers longer: what the turns of the `gatherMs` after the first add bring is
 * handed over together, by a timer (the stream joins: http/edge-router.ts).
 */
export class TurnBatcher<T> {
  private batch: T[] = [];
  private readonly seen: Set<T> | null;
  private scheduled = false;

  constructor(
    private readonly flush: (items: T[]) => void,
    options: { unique?: boolean; gatherMs?: number } = {},
  ) {
    this.seen = options.unique ? new Set() : null;
    this.gatherMs = options.gatherMs ?? 0;
  }

  private readonly gatherMs: number;

  add(item: T): void {
    if (this.seen !== null) {
      if (this.seen.has(item)) return;
      this.seen.add(item);
    }
    this.batch.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.gatherMs > 0) setTimeout(this.run, this.gatherMs);
    else setImmediate(this.run);
  }

  /** Drops what waits (a closed feed, say). */
  clear(): void {
    this.batch = [];
    this.seen?.clear();
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const items = this.batch;
    this.batch = [];
    this.seen?.clear();
    this.flush(items);
  };
}
