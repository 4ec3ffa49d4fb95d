import { formatTickId } from '../domain/tick-id';
import type { ResumePoint } from '../domain/resume';
import type { ReadAfterResult } from '../stream/tick-log';

type Waiter = { pairs: ReadonlySet<string>; resolve(result: ReadAfterResult): void; reject(err: unknown): void };
type Group = { point: ResumePoint; pairs: Set<string>; waiters: Waiter[] };

/**
 * The resume reads of one event-loop turn, read once per resume point. After a restart or a
 * worker's death thousands of subscribers come back within a second or two, nearly all from
 * the same last id: one read (an XRANGE and an XINFO STREAM, and the decoding of every entry)
 * serves all of them, and their replays share the same tick objects (one encoding per tick
 * and wire shape, encoded.ts, instead of one per subscriber).
 *
 * Only reads asked for in the same turn are joined, and the read is sent once that turn's I/O
 * is done (setImmediate): every subscriber it serves was in its pairs' sets before the read
 * was sent, as the hold-then-flush hand-over needs (stream/subscription.ts). A read already
 * sent is never joined: a tick committed by the tail between its send and a later join would
 * be neither in the read nor held.
 */
export class BatchedReads {
  private batch: Map<string, Group> | null = null;

  constructor(private readonly read: (point: ResumePoint, pairs: ReadonlySet<string>) => Promise<ReadAfterResult>) {}

  readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    if (this.batch === null) {
      this.batch = new Map();
      setImmediate(() => this.send());
    }
    const key = point.kind === 'id' ? `id ${formatTickId(point.id)}` : `time ${point.ms}`;
    let group = this.batch.get(key);
    if (!group) {
      group = { point, pairs: new Set(), waiters: [] };
      this.batch.set(key, group);
    }
    for (const pair of pairs) group.pairs.add(pair);
    const waiters = group.waiters;
    return new Promise<ReadAfterResult>((resolve, reject) => waiters.push({ pairs, resolve, reject }));
  }

  private send(): void {
    const batch = this.batch;
    this.batch = null;
    for (const { point, pairs, waiters } of batch?.values() ?? []) {
      this.read(point, pairs).then(
        (result) => {
          for (const w of waiters) w.resolve(result.complete && w.pairs.size < pairs.size ? { complete: true, ticks: result.ticks.filter((t) => w.pairs.has(t.pair)) } : result);
        },
        (err: unknown) => {
          for (const w of waiters) w.reject(err);
        },
      );
    }
  }
}
