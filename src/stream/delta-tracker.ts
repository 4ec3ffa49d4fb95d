import { deltaMessage } from './encoded';
import type { DeltaMessage, StreamMessage } from './sink';

/**
 * What a `delta` subscriber was last written per pair (docs/api.md "Deltas"): a tick goes out as
 * its shared delta only when the subscriber is in sequence, i.e. the last tick of the pair it
 * was written is exactly the tick the delta is based on. Otherwise (the first tick of a pair on
 * the connection, a replay's first, a conflated tick that replaces others, the first after a
 * reset, a tick whose delta the hub never made) the full tick. Decided as a message is written,
 * after the queues and conflation, so whatever was held or skipped before it is accounted for.
 */
export class DeltaTracker {
  /** Per pair: the id of the last tick written (strings the ticks already hold). */
  private readonly last = new Map<string, string>();

  /** The message to write for `message`: its delta when in sequence, else itself. */
  outgoing(message: StreamMessage): StreamMessage | DeltaMessage {
    if (message.type === 'reset') {
      this.last.clear(); // what follows a reset starts afresh, in full
      return message;
    }
    if (message.type !== 'price') return message;
    const { tick } = message;
    const before = this.last.get(tick.pair);
    this.last.set(tick.pair, tick.id);
    if (before === undefined || message.skipped !== 0) return message;
    const delta = deltaMessage(tick);
    return delta !== undefined && delta.baseId === before ? delta : message;
  }

  /** Pairs the subscriber left: a later join of them starts in full. */
  forget(pairs: Iterable<string>): void {
    for (const pair of pairs) this.last.delete(pair);
  }
}
