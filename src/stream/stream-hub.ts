import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { Subscription } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
import { byTickId, formatTickId, idAfter, idMs } from '../domain/tick-id';
import { Fifo } from '../util/fifo';
import { withDeadline } from '../util/deadline';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { TRANSPORTS, type DisconnectReason, type PairStatus, type ResetEvent, type Tick, type Transport } from '../shared/wire';
import type { Lease } from './connection-registry';
import { PriceStreamService } from './price-stream.service';
import { stampedSince, type ReadAfterResult } from './tick-log';

/** What the hub hands a transport. A live tick's message is one object shared by every subscriber (transports cache its encoding). */
export type PriceMessage = { readonly type: 'price'; readonly tick: Tick; readonly skipped: number };
export type ResetMessage = { readonly type: 'reset'; readonly reset: ResetEvent };
export type StatusMessage = { readonly type: 'status'; readonly status: PairStatus };
export type StreamMessage = PriceMessage | ResetMessage | StatusMessage;

/**
 * A transport, as the hub sees it (centrifuge's Transport: write and close). A transport frames
 * messages and does its handshake; everything else (replay, live fan-out, the slow-subscriber
 * policy, conflation, shutdown) is the hub's.
 */
export interface Sink {
  readonly transport: Transport;
  /** The subscriber the hub made for this sink, given before anything else happens to it. */
  bind(subscriber: Subscriber): void;
  /**
   * Hands one message to the transport. Returns false once the transport holds as much as it
   * should (its buffer to the kernel is full): the hub then keeps further messages itself until
   * the transport calls `Subscriber.drained()`.
   */
  write(message: StreamMessage): boolean;
  /**
   * Ends the connection: with the transport's reconnect hint on 'shutdown', at once otherwise.
   * The transport calls `Subscriber.closed()` when the connection is gone, whoever ended it.
   */
  end(reason: DisconnectReason): void;
  /** Drops the connection at once (a shutdown's stragglers). */
  destroy(): void;
}

/** How a join ends: `ready` before its first message (acknowledgements), or `failed` (the resume read failed). */
export type JoinCallbacks = { ready?(recovered: boolean): void; failed?(err: unknown): void };

/** For log lines. */
export type SubscriberInfo = { requestId?: string };

/** Pairs being joined: live ticks of theirs are held here until the replay is out (Mercure's Ready). */
type Join = { readonly pairs: readonly string[]; readonly held: Tick[]; gap: ResetEvent | null };

/** The newest id a subscriber resuming after an id has seen (null: not an id resume; a time compares timestamps). */
export function seenBefore(resume: ResumePoint | undefined): string | null {
  return resume?.kind === 'id' ? formatTickId(resume.id) : null;
}

/** The latest tick of a pair waiting for its conflation slot, and how many ticks it replaces. */
type Pending = { tick: Tick; skipped: number };

/**
 * One subscriber of any transport: its pairs, what it is owed, and how fast it drains.
 *
 * Delivery: a message goes straight to the sink while the sink takes them; once it says it is
 * full, messages wait here until it drains. Two queues: `catchUp` (a join's replay, reset and
 * the ticks held back meanwhile: the subscriber catching up, never counted as slow) drains
 * first, then `queue` (live messages, the backlog that CLIENT_BUFFER_SIZE bounds). Conflation
 * keeps at most one pending tick per pair instead (`pending`), written when the pair's interval
 * has passed and the sink takes it.
 */
export class Subscriber {
  /** The subscribed pairs (an array: a connection has a handful, and thousands of connections cost less this way). */
  private readonly pairs: string[] = [];
  readonly openedAt = Date.now();
  /** Joins in progress, by pair. */
  private holding: Map<string, Join> | null = null;
  /** Per pair: live ticks up to this id were already written (a replay read ahead of the live feed). */
  private after: Map<string, string> | null = null;
  /** Allocated while something waits (most subscribers never have a backlog). */
  private catchUp: Fifo<StreamMessage> | null = null;
  private queue: Fifo<StreamMessage> | null = null;
  /** The sink said it holds enough; nothing is written until `drained()`. */
  private full = false;
  /** `conflate=<ms>` asked for (0: every tick). */
  private conflateMs = 0;
  /** Switched to conflated delivery by the slow-subscriber policy (CONFLATE_SLOW_MS). */
  private degraded = false;
  private pending: Map<string, Pending> | null = null;
  private sentAt: Map<string, number> | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** Conflation slots in a row the sink could not take (a conflated subscriber that stopped reading). */
  private stalls = 0;
  private endReason: DisconnectReason | null = null;
  private gone = false;

  constructor(
    private readonly hub: StreamHub,
    readonly sink: Sink,
    readonly lease: Lease,
    readonly requestId: string | undefined,
  ) {}

  get transport(): Transport {
    return this.sink.transport;
  }

  /** Live messages waiting for the sink (what CLIENT_BUFFER_SIZE bounds). */
  get backlog(): number {
    return this.queue?.length ?? 0;
  }

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
      this.pending?.delete(pair);
    }
    this.hub.detach(this, [...gone]);
    const keep = (m: StreamMessage) => (m.type === 'price' ? !gone.has(m.tick.pair) : m.type === 'status' ? !gone.has(m.status.pair) : true);
    const kept = (q: Fifo<StreamMessage> | null) => {
      const rest = q?.toArray().filter(keep) ?? [];
      return rest.length > 0 ? new Fifo<StreamMessage>(rest) : null;
    };
    this.queue = kept(this.queue);
    this.catchUp = kept(this.catchUp);
    return this.pairList();
  }

  /** Ends the connection (slow, flood, shutdown, error). The sink closes it; `closed()` follows. */
  end(reason: DisconnectReason): void {
    if (this.gone || this.endReason) return;
    this.endReason = reason;
    this.clearTimer();
    this.sink.end(reason);
  }

  /** The transport's buffer has room again. */
  drained(): void {
    if (this.gone) return;
    this.full = false;
    this.stalls = 0;
    this.flush();
  }

  /** The connection is gone: called by the transport once, whatever ended it. */
  closed(reason: DisconnectReason = 'client'): void {
    if (this.gone) return;
    this.gone = true;
    this.clearTimer();
    this.hub.remove(this, this.endReason ?? reason);
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

  private get conflateInterval(): number {
    return this.conflateMs > 0 ? this.conflateMs : this.degraded ? this.hub.config.conflateSlowMs : 0;
  }

  private setConflation(ms: number): void {
    this.conflateMs = ms;
    if (this.conflateInterval === 0 && this.pending !== null) {
      // Back to every tick: what waits for a slot goes out now, in id order.
      const waiting = [...this.pending.values()].sort(byTickId);
      this.pending = null;
      this.clearTimer();
      for (const p of waiting) this.enqueue({ type: 'price', tick: p.tick, skipped: p.skipped });
      this.flush();
    }
  }

  /** Writes now if the sink takes it and nothing waits before it; else keeps it (or conflates it). */
  private deliver(message: StreamMessage): boolean {
    if (this.gone || this.endReason) return false;
    if (message.type === 'price' && this.conflateInterval > 0) return this.conflate(message);
    if (!this.full && this.catchUp === null && this.queue === null) {
      this.write(message);
      return true;
    }
    const length = this.enqueue(message);
    // Behind a catch-up that still drains, live ticks wait longer: as many as a whole window more.
    const limit = this.hub.config.clientBufferSize + (this.catchUp !== null ? this.hub.config.historySize : 0);
    if (length > limit) this.hub.slow(this);
    return false;
  }

  private enqueue(message: StreamMessage): number {
    return (this.queue ??= new Fifo<StreamMessage>([])).push(message);
  }

  private write(message: StreamMessage): void {
    if (!this.sink.write(message)) this.full = true;
  }

  /** @internal The policy's second chance: the live backlog becomes the latest tick per pair, delivered at CONFLATE_SLOW_MS. */
  degrade(): void {
    this.degraded = true;
    const backlog = this.queue?.toArray() ?? [];
    this.queue = null;
    for (const m of backlog) {
      if (m.type === 'price') this.conflate(m);
      else (this.catchUp ??= new Fifo<StreamMessage>([])).push(m); // a reset keeps its place before the ticks that follow it
    }
  }

  private conflate(message: PriceMessage): boolean {
    const { tick } = message;
    this.pending ??= new Map();
    this.sentAt ??= new Map();
    const waiting = this.pending.get(tick.pair);
    if (waiting) {
      waiting.tick = tick;
      waiting.skipped += 1 + message.skipped;
      return false;
    }
    const now = Date.now();
    const last = this.sentAt.get(tick.pair);
    if (!this.full && this.catchUp === null && this.queue === null && (last === undefined || now - last >= this.conflateInterval)) {
      this.sentAt.set(tick.pair, now);
      this.write(message);
      return true;
    }
    this.pending.set(tick.pair, { tick, skipped: message.skipped });
    this.arm(now);
    return false;
  }

  /** Writes what the sink takes: catch-up first, then the backlog, then conflated ticks whose slot has come. */
  private flush(): void {
    while (!this.full && !this.gone && !this.endReason) {
      const m = this.next();
      if (m === undefined) break;
      this.write(m);
      if (m.type === 'price') this.hub.countSent(this.transport, m.tick);
    }
    if (this.full || this.gone || this.endReason) return;
    if (this.pending !== null && this.pending.size > 0) this.flushPending(Date.now());
    if (this.degraded && !this.full && (this.pending === null || this.pending.size === 0)) {
      this.degraded = false; // drained: every tick again
      this.pending = null;
    }
  }

  /** The next held message: catch-up first; an emptied queue is dropped. */
  private next(): StreamMessage | undefined {
    if (this.catchUp !== null) {
      const m = this.catchUp.shift();
      if (this.catchUp.length === 0) this.catchUp = null;
      if (m !== undefined) return m;
    }
    if (this.queue !== null) {
      const m = this.queue.shift();
      if (this.queue.length === 0) this.queue = null;
      return m;
    }
    return undefined;
  }

  private flushPending(now: number): void {
    const pending = this.pending;
    if (pending === null) return;
    const interval = this.conflateInterval;
    const due = [...pending.values()].filter((p) => now - (this.sentAt?.get(p.tick.pair) ?? -Infinity) >= interval).sort(byTickId);
    for (const p of due) {
      if (this.full) break;
      pending.delete(p.tick.pair);
      this.sentAt?.set(p.tick.pair, now);
      this.write({ type: 'price', tick: p.tick, skipped: p.skipped });
      this.hub.countSent(this.transport, p.tick);
    }
    if (pending.size > 0) this.arm(now);
  }

  /** One timer per subscriber while it has a conflated tick waiting: at the earliest slot. */
  private arm(now: number): void {
    if (this.timer !== undefined || this.pending === null) return;
    const interval = this.conflateInterval;
    let at = Infinity;
    for (const p of this.pending.values()) at = Math.min(at, (this.sentAt?.get(p.tick.pair) ?? -Infinity) + interval);
    this.timer = setTimeout(() => this.onSlot(), Math.max(0, at - now));
    this.timer.unref();
  }

  private onSlot(): void {
    this.timer = undefined;
    if (this.gone || this.endReason) return;
    if (this.full || this.catchUp !== null || this.queue !== null) {
      // Conflated and still not draining: cut once it has missed CLIENT_BUFFER_SIZE slots in a row.
      if (++this.stalls > this.hub.config.clientBufferSize) return this.hub.slow(this, true);
      this.timer = setTimeout(() => this.onSlot(), Math.max(1, this.conflateInterval));
      this.timer.unref();
      return;
    }
    this.flushPending(Date.now());
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private completeJoin(join: Join, resume: ResumePoint | undefined, result: ReadAfterResult | null, callbacks: JoinCallbacks): void {
    const pairs = this.dropJoin(join);
    if (this.gone || this.endReason) return;
    const recovered = result !== null && result.complete && join.gap === null;
    callbacks.ready?.(recovered);
    if (pairs.length === 0) return;
    const mine = new Set(pairs);
    const messages: StreamMessage[] = [];
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
      const reset = join.gap ?? (result !== null && !result.complete ? result.reset : null);
      if (reset) messages.push({ type: 'reset', reset });
      replay = [];
      for (const pair of pairs) {
        const latest = this.hub.latest(pair);
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
    if (this.conflateInterval > 0) {
      // Catching up conflated: the latest tick of each pair, saying how many it replaces.
      const latest = new Map<string, Pending>();
      for (const t of ticks) {
        const p = latest.get(t.pair);
        latest.set(t.pair, { tick: t, skipped: p ? p.skipped + 1 : 0 });
      }
      for (const p of [...latest.values()].sort(byTickId)) {
        messages.push(p.skipped === 0 ? this.hub.messageOf(p.tick) : { type: 'price', tick: p.tick, skipped: p.skipped });
        this.sentAt ??= new Map();
        this.sentAt.set(p.tick.pair, Date.now());
      }
    } else {
      for (const t of ticks) messages.push(this.hub.messageOf(t));
    }
    // A pair that is stale now says so after its latest price, whatever the resume.
    for (const pair of pairs) {
      const status = this.hub.staleStatusOf(pair);
      if (status) messages.push({ type: 'status', status });
    }
    if (messages.length > 0) {
      if (this.catchUp === null) this.catchUp = new Fifo<StreamMessage>(messages);
      else this.catchUp.append(messages);
    }
    this.flush();
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

const TRANSPORT_INDEX = Object.fromEntries(TRANSPORTS.map((t, i) => [t, i])) as Record<Transport, number>;

/**
 * The one subscription core of every transport. One subscription per pair to the price
 * channels fans each live tick out over that pair's set of subscribers in one loop, with one
 * message object per tick (each transport encodes it once and shares the bytes). A subscriber
 * joins pairs with a resume point: it is in the pairs' sets at once, its live ticks held back
 * while the window is read, then it gets the replay (or a reset and the latest ticks), then
 * the held ticks past what the replay covered, then live ones, and any live tick the replay
 * already carried is dropped by id. No gap, no duplicate, also when the read is asynchronous
 * and ahead of the live feed (Redis). The slow-subscriber policy, conflation and the bounded
 * close on shutdown are here too, the same for every transport.
 */
@Injectable()
export class StreamHub implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(StreamHub.name);
  private readonly sets = new Map<string, Set<Subscriber>>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly feeds = new Subscription();
  /** The shared message of each live tick (and of the latest tick per pair, for snapshots). */
  private readonly messages = new WeakMap<Tick, PriceMessage>();
  private started = false;
  /** The pairs that are stale now, with the status sent for each. */
  private readonly stale = new Map<string, PairStatus>();
  private ending: Promise<void> | undefined;
  private allClosed: (() => void) | undefined;
  readonly pairs: readonly string[];

  constructor(
    private readonly stream: PriceStreamService,
    readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.pairs = config.pairs;
    for (const pair of config.pairs) this.sets.set(pair, new Set());
  }

  onApplicationBootstrap(): void {
    this.start();
  }

  /** Subscribes the per-pair feeds (idempotent; the first `open` does it too). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.feeds.add(
      this.stream.gaps$.subscribe((reset) => {
        for (const sub of this.subscribers) sub.gap(reset);
      }),
    );
    for (const [pair, set] of this.sets) {
      this.feeds.add(
        this.stream.live(pair).subscribe({
          next: (tick) => this.fanOut(tick, set),
          complete: () => void this.shutdown(),
        }),
      );
    }
  }

  /**
   * A pair went stale or fresh again (StaleWatch): every subscriber of it hears it, and while it
   * is stale a subscriber that joins it gets the status at once.
   */
  pairStatus(status: PairStatus): void {
    if (status.state === 'stale') this.stale.set(status.pair, status);
    else this.stale.delete(status.pair);
    const message: StatusMessage = { type: 'status', status };
    for (const sub of this.sets.get(status.pair) ?? []) sub.status(message);
  }

  /** The status a subscriber joining the pair gets now: the stale one, or none while it is fresh. */
  staleStatusOf(pair: string): PairStatus | undefined {
    return this.stale.get(pair);
  }

  /** A new subscriber on a transport's connection; it holds `lease` until it is closed. */
  open(sink: Sink, lease: Lease, info: SubscriberInfo = {}): Subscriber {
    this.start();
    const sub = new Subscriber(this, sink, lease, info.requestId);
    sink.bind(sub);
    this.subscribers.add(sub);
    if (this.ending) sub.end('shutdown');
    return sub;
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Subscribers in the pairs' sets, summed (for leak checks: 0 once everyone left). */
  memberships(): number {
    let n = 0;
    for (const set of this.sets.values()) n += set.size;
    return n;
  }

  /**
   * Ends every stream with its transport's reconnect hint and waits for them to close, at most
   * min(2 s, SHUTDOWN_TIMEOUT_MS / 2); what is left then is dropped. Runs once (the channels'
   * completion and Nest's shutdown hook both lead here).
   */
  shutdown(): Promise<void> {
    this.ending ??= this.closeAll();
    return this.ending;
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.shutdown();
    this.feeds.unsubscribe();
  }

  private async closeAll(): Promise<void> {
    if (this.subscribers.size === 0) return;
    this.logger.log({ msg: 'closing streams with a reconnect hint', streams: this.subscribers.size });
    const closed = new Promise<void>((resolve) => (this.allClosed = resolve));
    for (const sub of [...this.subscribers]) sub.end('shutdown');
    if (this.subscribers.size === 0) return;
    const bound = Math.min(2000, this.config.shutdownTimeoutMs / 2);
    try {
      await withDeadline(closed, bound, 'closing the streams');
    } catch {
      this.logger.warn({ msg: 'streams still open after the shutdown bound, dropped', streams: this.subscribers.size, boundMs: bound });
      for (const sub of [...this.subscribers]) sub.sink.destroy();
    }
  }

  /** @internal */
  attach(sub: Subscriber, pairs: readonly string[]): void {
    for (const pair of pairs) this.sets.get(pair)?.add(sub);
  }

  /** @internal */
  detach(sub: Subscriber, pairs: readonly string[]): void {
    for (const pair of pairs) this.sets.get(pair)?.delete(sub);
  }

  /** @internal */
  remove(sub: Subscriber, reason: DisconnectReason): void {
    if (!this.subscribers.delete(sub)) return;
    this.detach(sub, sub.pairList());
    sub.lease.release(reason);
    this.logger.log({ msg: 'stream closed', transport: sub.transport, requestId: sub.requestId, ip: sub.lease.ip, reason, durationMs: Date.now() - sub.openedAt });
    if (this.subscribers.size === 0) this.allClosed?.();
  }

  /** @internal Past CLIENT_BUFFER_SIZE: conflated delivery when CONFLATE_SLOW_MS allows, else (or when even that does not drain) cut. */
  slow(sub: Subscriber, stalled = false): void {
    if (!stalled && this.config.conflateSlowMs > 0) {
      this.metrics.slow(sub.transport, 'conflated');
      this.logger.warn({ msg: 'slow subscriber switched to conflated delivery', transport: sub.transport, ip: sub.lease.ip, backlog: sub.backlog, conflateMs: this.config.conflateSlowMs });
      return sub.degrade();
    }
    this.metrics.slow(sub.transport, 'disconnected');
    this.logger.warn({ msg: 'slow subscriber disconnected', transport: sub.transport, ip: sub.lease.ip, backlog: sub.backlog, limit: this.config.clientBufferSize });
    sub.end('slow');
  }

  /** @internal */
  readAfter(resume: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    return this.stream.readAfter(resume, pairs);
  }

  /** @internal */
  latest(pair: string): Tick | undefined {
    return this.stream.latest(pair);
  }

  /** @internal The shared message of a tick (one object per tick, so transports can cache its encoding). */
  messageOf(tick: Tick): PriceMessage {
    let m = this.messages.get(tick);
    if (m === undefined) {
      m = { type: 'price', tick, skipped: 0 };
      this.messages.set(tick, m);
    }
    return m;
  }

  /** @internal A queued tick written to one subscriber. */
  countSent(transport: Transport, tick: Tick): void {
    this.metrics.sent(transport, idMs(tick.id));
  }

  /** The hot loop: one message per tick, one `offer` per subscriber of the pair. */
  private fanOut(tick: Tick, set: ReadonlySet<Subscriber>): void {
    if (set.size === 0) return;
    const message = this.messageOf(tick);
    const counts = [0, 0, 0];
    for (const sub of set) if (sub.offer(message)) counts[TRANSPORT_INDEX[sub.transport]]++;
    const at = idMs(tick.id);
    for (let i = 0; i < TRANSPORTS.length; i++) this.metrics.sent(TRANSPORTS[i], at, counts[i]);
  }
}
