import type { ResumePoint } from '../domain/resume';
import { byTickId, formatTickId, idAfter } from '../domain/tick-id';
import type { DisconnectReason, ResetEvent, Tick, Transport } from '../shared/wire';
import type { JoinCallbacks, PriceMessage, ResetMessage, StatusMessage, StreamMessage } from './sink';
import type { StreamHub } from './stream-hub';
import { stampedSince, type ReadAfterResult } from './tick-log';

/** Pairs being joined: live ticks of theirs are held here until the replay is out (Mercure's Ready). */
type Join = { readonly pairs: readonly string[]; readonly held: Tick[]; gap: ResetEvent | null };

/** The newest id a subscriber resuming after an id has seen (null: not an id resume; a time compares timestamps). */
export function seenBefore(resume: ResumePoint | undefined): string | null {
  return resume?.kind === 'id' ? formatTickId(resume.id) : null;
}

/**
 * What a subscriber wants (Mercure's Subscriber, which its LocalSubscriber embeds): its pairs,
 * its joins in progress and what each pair is owed. How its messages reach the sink (queues,
 * conflation, the slow policy) is the Subscriber that extends it (subscriber.ts): one object
 * per connection, the hot loop's `offer` and `deliver` on it.
 */
export abstract class PairSubscription {
  /** The subscribed pairs (an array: a connection has a handful, and thousands of connections cost less this way). */
  private readonly pairs: string[] = [];
  /** Joins in progress, by pair. */
  private holding: Map<string, Join> | null = null;
  /** Per pair: live ticks up to this id were already written (a replay read ahead of the live feed). */
  private after: Map<string, string> | null = null;
  /** Why the server ended it (set once by `end`). */
  protected endReason: DisconnectReason | null = null;
  /** The connection is gone (set once by `closed`). */
  protected gone = false;

  constructor(protected readonly hub: StreamHub) {}

  abstract get transport(): Transport;
  /** Writes now if the sink takes it and nothing waits before it; else keeps it (or conflates it). Returns whether it was written now. */
  protected abstract deliver(message: StreamMessage): boolean;
  /** `conflate=<ms>` for the whole subscription from now on. */
  protected abstract setConflation(ms: number): void;
  /** A join's catch-up: the reset (if any), its ticks, the status of its stale pairs. */
  protected abstract catchUpWith(reset: ResetMessage | null, ticks: readonly Tick[], statuses: readonly StatusMessage[]): void;
  /** Forgets what waits for pairs it left. */
  protected abstract dropPairs(gone: ReadonlySet<string>): void;

  /** The subscribed pairs, in configured order. */
  pairList(): string[] {
    return this.hub.pairs.filter((p) => this.pairs.includes(p));
  }

  /**
   * Adds pairs (those it has are left alone, so a repeated call never duplicates a tick):
   * replay from `resume` (or a reset and the latest ticks when the window no longer reaches
   * back; without a resume point, the latest tick of each pair), then live, with no gap and no
   * duplicate. `conflateMs` (when given) applies to the whole subscription from now on.
   */
  subscribe(pairs: readonly string[], resume: ResumePoint | undefined, conflateMs: number | undefined, callbacks: JoinCallbacks = {}): void {
    if (this.gone || this.endReason) return;
    if (conflateMs !== undefined) this.setConflation(conflateMs);
    const fresh = pairs.filter((p, i) => !this.pairs.includes(p) && pairs.indexOf(p) === i);
    if (fresh.length === 0) return callbacks.ready?.(resume !== undefined);
    const join: Join = { pairs: fresh, held: [], gap: null };
    this.holding ??= new Map();
    for (const pair of fresh) {
      this.pairs.push(pair);
      this.holding.set(pair, join);
    }
    this.hub.attach(this, fresh);
    const read: Promise<ReadAfterResult | null> = resume ? this.hub.readAfter(resume, new Set(fresh)) : Promise.resolve(null);
    read.then(
      (result) => this.completeJoin(join, resume, result, callbacks),
      (err: unknown) => {
        this.unsubscribe(this.dropJoin(join));
        callbacks.failed?.(err);
      },
    );
  }

  /** Removes pairs (joined or joining); returns the pairs it still has. */
  unsubscribe(pairs: readonly string[]): string[] {
    const gone = new Set(pairs.filter((p) => this.pairs.includes(p)));
    if (gone.size === 0) return this.pairList();
    for (const pair of gone) {
      this.pairs.splice(this.pairs.indexOf(pair), 1);
      this.holding?.delete(pair);
      this.after?.delete(pair);
    }
    this.hub.detach(this, [...gone]);
    this.dropPairs(gone);
    return this.pairList();
  }

  /** @internal A live tick of one of its pairs; returns whether it was written now. */
  offer(message: PriceMessage): boolean {
    const pair = message.tick.pair;
    if (this.holding !== null) {
      const join = this.holding.get(pair);
      if (join) {
        join.held.push(message.tick);
        return false;
      }
    }
    if (this.after !== null) {
      const last = this.after.get(pair);
      if (last !== undefined) {
        if (!idAfter(message.tick.id, last)) return false;
        this.after.delete(pair);
        if (this.after.size === 0) this.after = null;
      }
    }
    return this.deliver(message);
  }

  /** @internal A pair of its own went stale or fresh again; a join of the pair in progress reads the state as it completes. */
  status(message: StatusMessage): void {
    if (this.gone || this.holding?.has(message.status.pair)) return;
    this.deliver(message);
  }

  /** @internal A gap in the live stream: the promise of completeness is off; a join in progress ends with the reset instead of its replay. */
  gap(reset: ResetEvent): void {
    if (this.gone) return;
    this.after = null; // what follows the reset is the latest of each pair, whatever its id
    if (this.holding !== null) for (const join of this.holding.values()) join.gap = reset;
    if (this.pairs.some((p) => !this.holding?.has(p))) this.deliver({ type: 'reset', reset });
  }

  private completeJoin(join: Join, resume: ResumePoint | undefined, result: ReadAfterResult | null, callbacks: JoinCallbacks): void {
    const pairs = this.dropJoin(join);
    if (this.gone || this.endReason) return;
    const recovered = result !== null && result.complete && join.gap === null;
    callbacks.ready?.(recovered);
    if (pairs.length === 0) return;
    const mine = new Set(pairs);
    let reset: ResetMessage | null = null;
    let replay: Tick[];
    // The last id each pair had by the end of the read: held ticks up to it are in the replay.
    const upTo = new Map<string, string | null>();
    if (recovered) {
      replay = result.ticks.filter((t) => mine.has(t.pair));
      // From a time, `since` means the ticks' own timestamps (stampedSince), not their ids: with
      // nothing replayed there is no id to cut at, and held ticks are taken by their timestamp.
      const last = replay.length > 0 ? replay[replay.length - 1].id : seenBefore(resume);
      for (const pair of pairs) upTo.set(pair, last);
    } else {
      const gap = join.gap ?? (result !== null && !result.complete ? result.reset : null);
      if (gap) reset = { type: 'reset', reset: gap };
      replay = [];
      for (const pair of pairs) {
        // The latest tick, as the pair's channel replays it to a new subscriber.
        const latest = this.hub.replayed(pair);
        if (latest) replay.push(latest);
        upTo.set(pair, latest?.id ?? null);
      }
      replay.sort(byTickId);
    }
    const since = recovered && resume?.kind === 'time' ? resume.ms : undefined;
    const held = join.held.filter((t) => {
      if (!mine.has(t.pair) || (since !== undefined && !stampedSince(t, since))) return false;
      const last = upTo.get(t.pair) ?? null;
      return last === null || idAfter(t.id, last);
    });
    const ticks = replay.concat(held);
    for (const t of ticks) upTo.set(t.pair, t.id);
    // Ticks the live feed has not delivered yet (a Redis replay can be ahead of the tail) must not come twice.
    for (const [pair, last] of upTo) {
      if (last === null) continue;
      this.after ??= new Map();
      this.after.set(pair, last);
    }
    // A pair that is stale now says so after its latest price, whatever the resume.
    const statuses: StatusMessage[] = [];
    for (const pair of pairs) {
      const status = this.hub.staleStatusOf(pair);
      if (status) statuses.push({ type: 'status', status });
    }
    this.catchUpWith(reset, ticks, statuses);
  }

  /** Ends a join: its pairs go live (or were left meanwhile); returns the pairs still its own. */
  private dropJoin(join: Join): string[] {
    const mine: string[] = [];
    for (const pair of join.pairs) {
      if (this.holding?.get(pair) !== join) continue;
      this.holding.delete(pair);
      mine.push(pair);
    }
    if (this.holding?.size === 0) this.holding = null;
    return mine;
  }
}
