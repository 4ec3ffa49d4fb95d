/**
 * First in, first out, in O(1) per item with index access (`Array.shift` copies the array once
 * it is large, and a replay or a window can hold tens of thousands). The dead prefix is dropped
 * once it is as large as the live part, so memory stays O(length).
 */
export class Fifo<T> {
  private head = 0;
  constructor(private items: T[] = []) {}

  get length(): number {
    return this.items.length - this.head;
  }
  /** The i-th item from the front. */
  at(i: number): T {
    return this.items[this.head + i];
  }
  push(item: T): number {
    this.items.push(item);
    return this.length;
  }
  append(items: readonly T[]): void {
    for (const item of items) this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  /** The first index whose item is not `before` the target (items sorted), in O(log n). */
  lowerBound(before: (item: T) => boolean): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.at(mid))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  /** Everything still waiting, in order. */
  toArray(): T[] {
    return this.items.slice(this.head);
  }
}
