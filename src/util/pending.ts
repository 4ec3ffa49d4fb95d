/**
 * What a sink holds for the end of its turn: one item (most of the time, one tick a turn), or
 * several in order. Kept as the item itself until a second comes, so the usual case allocates
 * no array.
 */
export type Pending<T> = T | T[] | undefined;

/** `pending` with `item` after what it holds (the array, when there is one, grows in place). */
export function withPending<T extends object>(pending: Pending<T>, item: T): T | T[] {
  if (pending === undefined) return item;
  if (Array.isArray(pending)) {
    pending.push(item);
    return pending;
  }
  return [pending, item];
}
