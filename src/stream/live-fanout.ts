import { Subscription } from 'rxjs';
import type { ResumePoint } from '../common/resume';
import type { ResetEvent, Tick } from '../shared/wire';
import { seenBefore, type PriceStreamService } from './price-stream.service';

/** What a subscriber of a LiveFanout must handle. */
export interface FanoutMember {
  /** A tick for this member alone: its replay, and live ticks until it joins the shared sets. */
  onTick(tick: Tick): void;
  /** The promise of completeness is off (resume too old, or a gap in a shared log). */
  onReset(reset: ResetEvent): void;
  /** The live stream ended (shutdown). Called once. */
  onEnd(): void;
  /** The resume read failed. */
  onError(err: unknown): void;
}

/**
 * Per member: its pairs, its own replay subscription, whether it has joined the sets, the last
 * id it has (from its own path, or its resume point), and whether a hand-over waits for the
 * channels to catch up with it.
 */
type Membership = { pairs: readonly string[]; replay?: Subscription; live: boolean; lastId: string | null; behind: boolean };

/**
 * Live fan-out through one set of members per pair, walked in one loop per tick, and the
 * hand-over from a member's resume replay to those sets.
 *
 * One `PriceStreamService.subscribe` per pair feeds `broadcast(tick, members)`, so a live tick
 * costs one RxJS delivery whatever the number of members, and per member only what the
 * transport does with it (a shared frame, one write). A member that joins first gets its own
 * `subscribe(pairs, resume)`, which replays what it missed (or a reset and the latest ticks)
 * and carries live ticks to it alone. A microtask after `ready` (by then the replay and the
 * ticks held back meanwhile are out) the member joins the pairs' sets and drops its own
 * subscription in one synchronous step. Both subscriptions observe the same channel, which
 * calls its observers in one synchronous `next`, and the step never runs inside one: each tick
 * before it came by the member's own path, each one after it by the sets. No gap, no duplicate,
 * provided the channels have delivered the last tick the member got: a replay read from Redis
 * can be ahead of the tail that feeds the channels (two connections), and those ticks would
 * then come again through the sets. So the hand-over waits until the channels have delivered
 * the member's last id; meanwhile its own subscription, whose id filter drops the repeats,
 * carries on, and each tick it brings retries the hand-over. (`PriceRooms` does the same with
 * Socket.IO rooms.)
 */
export class LiveFanout<M extends FanoutMember> {
  private readonly sets = new Map<string, Set<M>>();
  private readonly members = new Map<M, Membership>();
  private readonly feeds = new Subscription();
  private ended = false;

  constructor(
    private readonly stream: Pick<PriceStreamService, 'subscribe' | 'gaps$' | 'hasDelivered'>,
    pairs: readonly string[],
    /** Delivers a live tick to every member of its pair's set (which may shrink during the walk). */
    private readonly broadcast: (tick: Tick, members: ReadonlySet<M>) => void,
  ) {
    for (const pair of pairs) this.sets.set(pair, new Set());
  }

  /** Subscribes the per-pair feeds; call once, before the first member joins. */
  start(): void {
    // One reset per live member, however many of its pairs' sets it is in. Members still on
    // their own path get it from their own subscription.
    this.feeds.add(
      this.stream.gaps$.subscribe((reset) => {
        for (const [member, m] of this.members) if (m.live) member.onReset(reset);
      }),
    );
    for (const [pair, set] of this.sets) {
      this.feeds.add(
        this.stream.subscribe([pair]).subscribe({
          next: (event) => {
            if (event.type === 'price' && set.size > 0) this.broadcast(event.tick, set);
          },
          complete: () => this.end(),
        }),
      );
    }
  }

  /** Stops the feeds without ending the members (tests; shutdown goes through the channels' completion). */
  stop(): void {
    this.feeds.unsubscribe();
  }

  get size(): number {
    return this.members.size;
  }

  /** Adds a member: replay (or latest ticks) on its own path, then the shared sets. */
  join(member: M, pairs: readonly string[], resume?: ResumePoint): void {
    if (this.ended) return member.onEnd();
    const m: Membership = { pairs, live: false, lastId: seenBefore(resume), behind: false };
    this.members.set(member, m);
    const replay = this.stream.subscribe(pairs, resume).subscribe({
      next: (event) => {
        if (event.type === 'price') {
          member.onTick(event.tick);
          m.lastId = event.tick.id;
          if (m.behind) {
            m.behind = false;
            queueMicrotask(() => this.goLive(member, m));
          }
        } else if (event.type === 'reset') {
          member.onReset(event.reset);
          m.lastId = null; // what follows is the latest tick of each pair, whatever its id
        } else {
          queueMicrotask(() => this.goLive(member, m));
        }
      },
      complete: () => this.endMember(member),
      error: (err: unknown) => {
        this.leave(member);
        member.onError(err);
      },
    });
    // The subscription may have ended (or the member left) during subscribe().
    if (this.members.get(member) === m) m.replay = replay;
    else replay.unsubscribe();
  }

  /** Removes a member from its sets or stops its replay. Idempotent. */
  leave(member: M): void {
    const m = this.members.get(member);
    if (!m) return;
    this.members.delete(member);
    m.replay?.unsubscribe();
    if (m.live) for (const pair of m.pairs) this.sets.get(pair)?.delete(member);
  }

  private goLive(member: M, m: Membership): void {
    if (this.members.get(member) !== m || m.live) return;
    if (!this.stream.hasDelivered(m.lastId)) {
      m.behind = true; // the channels have not delivered what the replay read yet
      return;
    }
    m.replay?.unsubscribe();
    m.replay = undefined;
    m.live = true;
    for (const pair of m.pairs) this.sets.get(pair)?.add(member);
  }

  private endMember(member: M): void {
    if (!this.members.has(member)) return;
    this.leave(member);
    member.onEnd();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const member of [...this.members.keys()]) this.endMember(member);
  }
}
