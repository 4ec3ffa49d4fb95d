import { formatTickId } from '../domain/tick-id';
import type { ResumePoint } from '../domain/resume';
import type { ReadAfterResult } from '../stream/tick-log';

type Waiter = { pairs: ReadonlySet<string>; resolve(result: ReadAfterResult): void; reject(err: unknown): void };
type Group = { point: ResumePoint; pairs: Set<string>; waiters: Waiter[] };

/**
 * Resume reads, one per resume point while the log commits nothing. After a restart or a
 * worker's death thousands of subscribers come back within a second or two, nearly all from
 * the same last id: one read (an XRANGE and an XINFO STREAM, and the decoding of every entry)
 * serves all of them, and their replays share the same tick objects (one encoding per tick
 * and wire shape, encoded.ts, instead of one per subscriber).
 *
 * The reads asked for in one turn are sent once that turn's I/O is done (setImmediate), for
 * the union of their pairs. A read sent (or done) serves later joins from the same point, for
 * pairs it covers, until the log commits a tick or reports a gap (`committed`): a subscriber
 * joins its pairs' sets before it asks, and holds their live ticks from then on (the
 * hold-then-flush hand-over, stream/subscription.ts); a tick committed before it joined was in
 * Redis before the read was sent, so it is in the read; one committed after it joined is held.
 * Only a tick committed between the send and the join would be in neither, and a commit ends
 * the read's reuse. A read that fails is not reused.
 */
export class BatchedReads {
  private batch: Map<string, Group> | null = null;
  /** Reads sent since the last commit, by resume point. */
  private sent = new Map<string, { pairs: ReadonlySet<string>; result: Promise<ReadAfterResult> }>();

  constructor(private readonly read: (point: ResumePoint, pairs: ReadonlySet<string>) => Promise<ReadAfterResult>) {}

  /** The log committed a tick (or a gap): reads sent before it serve no later join. */
  committed(): void {
    if (this.sent.size > 0) this.sent = new Map();
  }

  readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    const key = point.kind === 'id' ? `id ${formatTickId(point.id)}` : `time ${point.ms}`;
    const done = this.sent.get(key);
    if (done && covers(done.pairs, pairs)) return done.result.then((result) => only(result, pairs, done.pairs));
    if (this.batch === null) {
      this.batch = new Map();
      setImmediate(() => this.send());
    }
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
    for (const [key, { point, pairs, waiters }] of batch ?? []) {
      const result = this.read(point, pairs);
      const sent = this.sent;
      sent.set(key, { pairs, result });
      result.then(
        (r) => {
          for (const w of waiters) w.resolve(only(r, w.pairs, pairs));
        },
        (err: unknown) => {
          if (sent.get(key)?.result === result) sent.delete(key);
          for (const w of waiters) w.reject(err);
        },
      );
    }
  }
}

function covers(read: ReadonlySet<string>, wanted: ReadonlySet<string>): boolean {
  for (const pair of wanted) if (!read.has(pair)) return false;
  return true;
}

/** A read's result for a waiter that asked for fewer pairs than the read covers. */
function only(result: ReadAfterResult, wanted: ReadonlySet<string>, read: ReadonlySet<string>): ReadAfterResult {
  return result.complete && wanted.size < read.size ? { complete: true, ticks: result.ticks.filter((t) => wanted.has(t.pair)) } : result;
}
