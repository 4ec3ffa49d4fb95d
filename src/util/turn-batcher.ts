/**
 * Collects what one event-loop turn adds and hands it over once, when the turn ends (one
 * `setImmediate` however many are added): a turn's frames in one write, a flood of frames
 * coalesced into one publish. An item added twice in a turn is handed over once.
 */
export class TurnBatcher<T> {
  private batch = new Set<T>();
  private scheduled = false;

  constructor(private readonly flush: (items: T[]) => void) {}

  add(item: T): void {
    this.batch.add(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const items = [...this.batch];
      this.batch = new Set();
      this.flush(items);
    });
  }

  /** Drops what waits (a closed feed, say). */
  clear(): void {
    this.batch.clear();
  }
}
