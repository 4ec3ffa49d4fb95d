import { Logger } from '@nestjs/common';
import { byTickId, idMs } from '../domain/tick-id';
import { Fifo } from '../util/fifo';
import type { DisconnectReason, Tick, Transport } from '../shared/wire';
import type { Grant } from '../auth/token-verifier';
import type { Lease } from './connection-registry';
import { DeltaTracker } from './delta-tracker';
import { priceMessage } from './encoded';
import { reconnectHint } from './reconnect-hint';
import type { PriceMessage, ResetMessage, Sink, StatusMessage, StreamMessage } from './sink';
import type { StreamHub } from './stream-hub';
import { PairSubscription } from './subscription';

const logger = new Logger('StreamHub');

/** The latest tick of a pair waiting for its conflation slot, and how many ticks it replaces. */
type Pending = { tick: Tick; skipped: number };

/**
 * One subscriber of any transport: its PairSubscription (what it wants: subscription.ts) and its
 * delivery to the sink (Mercure's LocalSubscriber, which embeds its Subscriber): the queues,
 * conflation, the slow-subscriber policy and the connection's end. One object per connection.
 *
 * A message goes straight to the sink while the sink takes them; once it says it is full,
 * messages wait here until it drains. Two queues: `catchUp` (a join's replay, reset and the
 * ticks held back meanwhile: the subscriber catching up, never counted as slow) drains first,
 * then `queue` (live messages, the backlog that CLIENT_BUFFER_SIZE bounds). Conflation keeps at
 * most one pending tick per pair instead (`pending`), written when the pair's interval has
 * passed and the sink takes it.
 */
export class Subscriber extends PairSubscription {
  readonly openedAt = Date.now();
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
  /** With `delta` asked for: what it was last written per pair (null: full ticks, the default). */
  private deltas: DeltaTracker | null = null;
  /** Conflation slots in a row the sink could not take (a conflated subscriber that stopped reading). */
  private stalls = 0;
  /** What its token grants now (a Socket.IO `refresh` replaces it); undefined: anonymous. */
  grant: Grant | undefined;
  /** The one timer of a stream with a token: its end at the token's expiry. */
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    hub: StreamHub,
    readonly sink: Sink,
    readonly lease: Lease,
    readonly requestId: string | undefined,
  ) {
    super(hub);
    this.grant = lease.grant;
  }

  /**
   * Ends the stream with `expired` (TOKEN_EXPIRED and the transport's reconnect hint) at `at`
   * (epoch ms): one timer per stream, replaced by a refresh, cleared when the stream ends.
   */
  expireAt(at: number): void {
    clearTimeout(this.expiry);
    this.expiry = undefined;
    if (this.gone || this.endReason) return;
    const delay = at - Date.now();
    if (delay <= 0) return this.end('expired');
    // setTimeout holds at most 2^31-1 ms (24.8 days); a later expiry is armed again then.
    this.expiry = setTimeout(() => this.expireAt(at), Math.min(delay, 2 ** 31 - 1));
    this.expiry.unref();
  }

  get transport(): Transport {
    return this.sink.transport;
  }

  /** Live messages waiting for the sink (what CLIENT_BUFFER_SIZE bounds). */
  get backlog(): number {
    return this.queue?.length ?? 0;
  }

  /** `delta` (docs/api.md "Deltas") from now on: true, false, or undefined (not asked: unchanged). */
  useDeltas(on: boolean | undefined): void {
    if (on === undefined || on === (this.deltas !== null) || this.gone) return;
    this.deltas = on ? new DeltaTracker() : null;
    this.hub.deltaUsers += on ? 1 : -1;
  }

  /** Ends the connection (slow, flood, shutdown, error). The sink closes it; `closed()` follows. */
  end(reason: DisconnectReason): void {
    if (this.gone || this.endReason) return;
    this.endReason = reason;
    this.clearTimer();
    clearTimeout(this.expiry);
    this.sink.end(reason, reason === 'shutdown' ? reconnectHint(this.hub.config.shutdownRetrySpreadMs) : undefined);
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
    clearTimeout(this.expiry);
    if (this.deltas !== null) this.hub.deltaUsers--;
    this.hub.remove(this, this.endReason ?? reason);
  }

  private get conflateInterval(): number {
    return this.conflateMs > 0 ? this.conflateMs : this.degraded ? this.hub.config.conflateSlowMs : 0;
  }

  protected setConflation(ms: number): void {
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

  /** Writes now if the sink takes it and nothing waits before it; else keeps it (or conflates it). Returns whether it was written now. */
  protected deliver(message: StreamMessage): boolean {
    if (this.gone || this.endReason) return false;
    if (message.type === 'price' && this.conflateInterval > 0) return this.conflate(message);
    if (!this.full && this.catchUp === null && this.queue === null) {
      this.write(message);
      return true;
    }
    const length = this.enqueue(message);
    // Behind a catch-up that still drains, live ticks wait longer: as many as a whole window more.
    const limit = this.hub.config.clientBufferSize + (this.catchUp !== null ? this.hub.config.historySize : 0);
    if (length > limit) this.slow();
    return false;
  }

  /**
   * A join's catch-up, after everything that waits: the reset (if any), its ticks (conflated: the
   * latest of each pair, saying how many it replaces), then the status of its stale pairs.
   */
  protected catchUpWith(reset: ResetMessage | null, ticks: readonly Tick[], statuses: readonly StatusMessage[]): void {
    const messages: StreamMessage[] = reset ? [reset] : [];
    if (this.conflateInterval > 0) {
      // Catching up conflated: the latest tick of each pair, saying how many it replaces.
      const latest = new Map<string, Pending>();
      for (const t of ticks) {
        const p = latest.get(t.pair);
        latest.set(t.pair, { tick: t, skipped: p ? p.skipped + 1 : 0 });
      }
      for (const p of [...latest.values()].sort(byTickId)) {
        messages.push(p.skipped === 0 ? priceMessage(p.tick) : { type: 'price', tick: p.tick, skipped: p.skipped });
        this.sentAt ??= new Map();
        this.sentAt.set(p.tick.pair, Date.now());
      }
    } else {
      for (const t of ticks) messages.push(priceMessage(t));
    }
    for (const status of statuses) messages.push(status);
    if (messages.length > 0) {
      if (this.catchUp === null) this.catchUp = new Fifo<StreamMessage>(messages);
      else this.catchUp.append(messages);
    }
    this.flush();
  }

  /** Forgets what waits for pairs the subscriber left. */
  protected dropPairs(gone: ReadonlySet<string>): void {
    for (const pair of gone) this.pending?.delete(pair);
    this.deltas?.forget(gone);
    const keep = (m: StreamMessage) => (m.type === 'price' ? !gone.has(m.tick.pair) : m.type === 'status' ? !gone.has(m.status.pair) : true);
    const kept = (q: Fifo<StreamMessage> | null) => {
      const rest = q?.toArray().filter(keep) ?? [];
      return rest.length > 0 ? new Fifo<StreamMessage>(rest) : null;
    };
    this.queue = kept(this.queue);
    this.catchUp = kept(this.catchUp);
  }

  private enqueue(message: StreamMessage): number {
    return (this.queue ??= new Fifo<StreamMessage>([])).push(message);
  }

  private write(message: StreamMessage): void {
    if (!this.sink.write(this.deltas === null ? message : this.deltas.outgoing(message))) this.full = true;
  }

  /** A live tick written from the backlog or a conflation slot: counted with its lag (one written at once is counted by the hub, per tick). */
  private countSent(tick: Tick): void {
    this.hub.metrics.sent(this.sink.transport, idMs(tick.id));
  }

  /** @internal The slow-subscriber policy, past CLIENT_BUFFER_SIZE: conflated delivery when CONFLATE_SLOW_MS allows, else (or when even that does not drain) cut. */
  slow(stalled = false): void {
    const transport = this.sink.transport;
    const ip = this.lease.ip;
    if (!stalled && this.hub.config.conflateSlowMs > 0) {
      this.hub.metrics.slow(transport, 'conflated');
      logger.warn({ msg: 'slow subscriber switched to conflated delivery', transport, ip, backlog: this.backlog, conflateMs: this.hub.config.conflateSlowMs });
      return this.degrade();
    }
    this.hub.metrics.slow(transport, 'disconnected');
    logger.warn({ msg: 'slow subscriber disconnected', transport, ip, backlog: this.backlog, limit: this.hub.config.clientBufferSize });
    this.end('slow');
  }

  /** The policy's second chance: the live backlog becomes the latest tick per pair, delivered at CONFLATE_SLOW_MS. */
  private degrade(): void {
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
    let caughtUp = 0;
    while (!this.full && !this.gone && !this.endReason) {
      const fromCatchUp = this.catchUp !== null;
      const m = this.next();
      if (m === undefined) break;
      this.write(m);
      if (m.type !== 'price') continue;
      if (fromCatchUp) caughtUp++;
      else this.countSent(m.tick);
    }
    // A catch-up's ticks are as old as the subscriber's absence (or the join's read), not late:
    // counted as sent, all in one, and left out of the delivery lag. Per tick, this was a sixth of
    // a join's CPU (a histogram observation for each of a resume's ~20 ticks).
    this.hub.metrics.sent(this.sink.transport, undefined, caughtUp);
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
      this.countSent(p.tick);
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
      if (++this.stalls > this.hub.config.clientBufferSize) return this.slow(true);
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
}
