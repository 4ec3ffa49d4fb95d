import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { Subscription } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
import { idMs } from '../domain/tick-id';
import { withDeadline } from '../util/deadline';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { TRANSPORTS, type DisconnectReason, type PairStatus, type Tick, type Transport } from '../shared/wire';
import type { Lease } from './connection-registry';
import { streamEnd } from '../auth/token-verifier';
import { linkPrevious, priceMessage } from './encoded';
import { PriceStreamService } from './price-stream.service';
import type { Sink, StatusMessage, SubscriberInfo } from './sink';
import { Subscriber } from './subscriber';
import type { PairSubscription } from './subscription';
import type { ReadAfterResult } from './tick-log';

export type { DeltaMessage, JoinCallbacks, PriceMessage, ResetMessage, Sink, StatusMessage, StreamMessage, SubscriberInfo } from './sink';
export { Subscriber } from './subscriber';

const TRANSPORT_INDEX = Object.fromEntries(TRANSPORTS.map((t, i) => [t, i])) as Record<Transport, number>;

/**
 * The one subscription core of every transport. One subscription per pair to the price
 * channels fans each live tick out over that pair's set of subscribers in one loop, with one
 * message object per tick (each wire shape is encoded once per tick: encoded.ts). A subscriber
 * joins pairs with a resume point: it is in the pairs' sets at once, its live ticks held back
 * while the window is read, then it gets the replay (or a reset and the latest ticks), then
 * the held ticks past what the replay covered, then live ones, and any live tick the replay
 * already carried is dropped by id. No gap, no duplicate, also when the read is asynchronous
 * and ahead of the live feed (Redis). The slow-subscriber policy and conflation (each
 * Subscriber's delivery) and the bounded close on shutdown are here too, the same for every transport.
 */
@Injectable()
export class StreamHub implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(StreamHub.name);
  private readonly sets = new Map<string, Set<PairSubscription>>();
  private readonly subscribers = new Set<Subscriber>();
  /** The last tick of each pair's channel: the base of the next one's delta (`delta` subscribers). */
  private readonly previous = new Map<string, Tick>();
  /** @internal Subscribers that asked for deltas: while there are none, no tick is diffed. */
  deltaUsers = 0;
  private readonly feeds = new Subscription();
  private started = false;
  /** The pairs that are stale now, with the status sent for each. */
  private readonly stale = new Map<string, PairStatus>();
  private ending: Promise<void> | undefined;
  private allClosed: (() => void) | undefined;
  private markEnded: (() => void) | undefined;
  /**
   * Resolves once every stream has been given its end (its last frames written, its reconnect
   * hint with them), before the connections close: a process may exit then (service.ts).
   */
  readonly streamsEnded = new Promise<void>((resolve) => (this.markEnded = resolve));
  readonly pairs: readonly string[];

  constructor(
    private readonly stream: PriceStreamService,
    readonly config: AppConfig,
    readonly metrics: MetricsService,
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
    else if (lease.grant) sub.expireAt(streamEnd(lease.grant));
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
    if (this.subscribers.size === 0) return this.markEnded?.();
    this.logger.log({ msg: 'closing streams with a reconnect hint', streams: this.subscribers.size });
    const closed = new Promise<void>((resolve) => (this.allClosed = resolve));
    for (const sub of [...this.subscribers]) sub.end('shutdown');
    this.markEnded?.();
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
  attach(sub: PairSubscription, pairs: readonly string[]): void {
    for (const pair of pairs) this.sets.get(pair)?.add(sub);
  }

  /** @internal */
  detach(sub: PairSubscription, pairs: readonly string[]): void {
    for (const pair of pairs) this.sets.get(pair)?.delete(sub);
  }

  /** @internal */
  remove(sub: Subscriber, reason: DisconnectReason): void {
    if (!this.subscribers.delete(sub)) return;
    this.detach(sub, sub.pairList());
    sub.lease.release(reason);
    this.logger.log({ msg: 'stream closed', transport: sub.transport, requestId: sub.requestId, ip: sub.lease.ip, sub: sub.grant?.sub, reason, durationMs: Date.now() - sub.openedAt });
    if (this.subscribers.size === 0) this.allClosed?.();
  }

  /** @internal */
  readAfter(resume: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    return this.stream.readAfter(resume, pairs);
  }

  /** @internal The tick a new subscriber of the pair starts from: the pair's channel's replay. */
  replayed(pair: string): Tick | undefined {
    return this.stream.replayed(pair);
  }

  /** The hot loop: one message per tick, one `offer` per subscriber of the pair. */
  private fanOut(tick: Tick, set: ReadonlySet<PairSubscription>): void {
    const previous = this.previous.get(tick.pair);
    this.previous.set(tick.pair, tick);
    if (set.size === 0) return;
    if (previous !== undefined && this.deltaUsers > 0) linkPrevious(tick, previous);
    const message = priceMessage(tick);
    const counts: number[] = [];
    for (let i = 0; i < TRANSPORTS.length; i++) counts.push(0); // packed, not holey: the loop below increments it per subscriber
    for (const sub of set) if (sub.offer(message)) counts[TRANSPORT_INDEX[sub.transport]]++;
    const at = idMs(tick.id);
    for (let i = 0; i < TRANSPORTS.length; i++) this.metrics.sent(TRANSPORTS[i], at, counts[i]);
  }
}
