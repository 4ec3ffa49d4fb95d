import { Injectable, Logger, Optional, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Observable, ReplaySubject, Subscription } from 'rxjs';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { ResumePoint } from '../common/resume';
import { formatTickId, idAfter } from '../common/tick-id';
import type { ResetEvent, Tick } from '../shared/wire';
import { TickLog, type TickDraft } from './tick-log';

/**
 * What a subscription yields. `ready` comes first, once the resume point is resolved
 * (transports use it for acknowledgements); then `reset` if the resume failed; then ticks.
 */
export type StreamEvent =
  | { type: 'ready'; recovered: boolean; replayed: number }
  | { type: 'reset'; reset: ResetEvent }
  | { type: 'price'; tick: Tick };

/** The newest id a subscriber resuming from `resume` is taken to have seen (null: none). */
export function seenBefore(resume: ResumePoint | undefined): string | null {
  if (resume?.kind === 'id') return formatTickId(resume.id);
  if (resume?.kind === 'time') return `${resume.ms - 1}-${Number.MAX_SAFE_INTEGER}`;
  return null;
}

const byId = (a: Tick, b: Tick): number => (a.id === b.id ? 0 : idAfter(a.id, b.id) ? 1 : -1);

/**
 * The heart of the service: one ReplaySubject per pair holds the latest tick and carries the
 * live ones; `subscribe` joins the history window and the live stream with no gap and no
 * duplicate. Every transport (SSE, Socket.IO, WebSocket) uses `subscribe`.
 */
@Injectable()
export class PriceStreamService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(PriceStreamService.name);
  private readonly channels = new Map<string, ReplaySubject<Tick>>();
  private readonly latestTicks = new Map<string, Tick>();
  /** When each pair's price was last confirmed by an upstream (changed or not). */
  private readonly confirmedAt = new Map<string, number>();
  private readonly committed = new Subscription();
  /** The newest id passed to the channels; everything they deliver from now on is newer. */
  private lastDelivered: string | null = null;
  /** Gaps in the live stream reported by the log (see TickLog.gaps$). */
  readonly gaps$: Observable<ResetEvent>;

  constructor(
    private readonly log: TickLog,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    for (const pair of config.pairs) this.channels.set(pair, new ReplaySubject<Tick>(1));
    this.committed.add(log.committed$.subscribe((tick) => this.deliver(tick)));
    this.committed.add(log.confirmations$.subscribe(({ pair, atMs }) => this.confirm(pair, atMs)));
    this.gaps$ = log.gaps$;
    metrics?.onScrape(() => {
      metrics.historySize.set(this.log.stats().size);
      const now = Date.now();
      for (const [pair, tick] of this.latestTicks) metrics.tickAge.set({ pair }, Math.max(0, now - Date.parse(tick.timestamp)) / 1000);
    });
  }

  async onModuleInit(): Promise<void> {
    const restored = (await this.log.latestPerPair()).sort(byId);
    for (const tick of restored) this.deliver(tick, false);
    if (restored.length > 0) this.logger.log({ msg: 'restored latest ticks from history', count: restored.length });
  }

  /**
   * Publishes a price if it differs from the pair's latest one. Returns the new tick, or null
   * when the price did not change. Either way the pair counts as freshly confirmed.
   */
  async publish(draft: TickDraft): Promise<Tick | null> {
    const atMs = Date.parse(draft.timestamp);
    this.confirm(draft.pair, atMs);
    this.log.shareConfirmation({ pair: draft.pair, atMs });
    if (this.latestTicks.get(draft.pair)?.price === draft.price) return null;
    return this.log.append(draft);
  }

  /** Records that an upstream answered for a pair (used for freshness). */
  confirm(pair: string, atMs: number): void {
    if (atMs > (this.confirmedAt.get(pair) ?? 0)) this.confirmedAt.set(pair, atMs);
  }

  /**
   * Whether the channels have delivered `id` (null: nothing to wait for), so that everything they
   * deliver from now on is newer. A replay read from the log can be ahead of them (Redis: the
   * read and the tail use different connections); a subscriber that leaves its own subscription
   * for a shared one must wait until this holds for its last id.
   */
  hasDelivered(id: string | null): boolean {
    return id === null || (this.lastDelivered !== null && !idAfter(id, this.lastDelivered));
  }

  latest(pair: string): Tick | undefined {
    return this.latestTicks.get(pair);
  }

  /** Whether the pair's price was confirmed within STALE_AFTER_MS. */
  isFresh(pair: string, nowMs = Date.now()): boolean {
    const at = this.confirmedAt.get(pair);
    return at !== undefined && nowMs - at <= this.config.staleAfterMs;
  }

  lastConfirmedAt(pair: string): number | undefined {
    return this.confirmedAt.get(pair);
  }

  history(pair: string, sinceMs: number | undefined, limit: number) {
    return this.log.history(pair, sinceMs, limit);
  }

  stats() {
    return this.log.stats();
  }

  /** Live subscriptions to the per-pair channels (each stream holds one per pair): for leak checks and metrics. */
  observerCount(): number {
    let n = 0;
    for (const channel of this.channels.values()) n += channel.observers.length;
    return n;
  }

  /**
   * Subscribes to some pairs, optionally resuming. Emits `ready`, then either the missed ticks
   * (all of them, in order) or a `reset` and the latest tick of each pair, then live ticks.
   * Without a resume point: `ready`, the latest tick of each pair, then live ticks.
   *
   * Live ticks are subscribed to before the window is read, and held back until the replay is
   * out; an id filter then drops what the replay already covered. That makes the hand-over
   * gapless and duplicate-free even when the read is asynchronous (Redis). A fresh subscriber
   * costs O(pairs), not O(history).
   */
  subscribe(pairs: readonly string[], resume?: ResumePoint): Observable<StreamEvent> {
    return new Observable<StreamEvent>((out) => {
      // The newest id this subscriber has (or is taken to have) seen; null: none yet.
      let lastId = seenBefore(resume);
      let held: Tick[] | null = [];
      const emit = (tick: Tick): void => {
        if (lastId !== null && !idAfter(tick.id, lastId)) return;
        lastId = tick.id;
        out.next({ type: 'price', tick });
      };
      const subs = new Subscription();
      // A gap in the live stream (a shared log this instance lost touch with) ends the promise
      // of completeness: say so, and what follows is the latest tick of each pair, then live.
      subs.add(
        this.gaps$.subscribe((reset) => {
          if (held) return;
          out.next({ type: 'reset', reset });
          lastId = null;
        }),
      );
      for (const pair of pairs) {
        const channel = this.channels.get(pair);
        if (!channel) throw new Error(`pair ${pair} is not configured`);
        subs.add(channel.subscribe({ next: (tick) => (held ? held.push(tick) : emit(tick)), complete: () => out.complete() }));
      }

      const start = (replay: Tick[], recovered: boolean, reset?: ResetEvent): void => {
        if (out.closed || !held) return;
        if (resume) this.metrics?.resumes.inc({ outcome: recovered ? 'recovered' : 'reset' });
        out.next({ type: 'ready', recovered, replayed: replay.length });
        if (reset) {
          out.next({ type: 'reset', reset });
          lastId = null;
        }
        for (const tick of replay) emit(tick);
        const pending = held.sort(byId);
        held = null;
        for (const tick of pending) emit(tick);
      };

      if (!resume) {
        start([], false);
      } else {
        this.log.readAfter(resume, new Set(pairs)).then(
          (r) => (r.complete ? start(r.ticks, true) : start([], false, r.reset)),
          (err: unknown) => out.error(err),
        );
      }
      return () => subs.unsubscribe();
    });
  }

  /** Ends every subscription (their transports then close with a reconnect hint). */
  beforeApplicationShutdown(): void {
    this.committed.unsubscribe();
    for (const channel of this.channels.values()) channel.complete();
  }

  private deliver(tick: Tick, confirm = true): void {
    const channel = this.channels.get(tick.pair);
    if (!channel) return; // another deployment's pair in a shared Redis stream
    const prev = this.latestTicks.get(tick.pair);
    if (prev && !idAfter(tick.id, prev.id)) return;
    this.latestTicks.set(tick.pair, tick);
    if (this.lastDelivered === null || idAfter(tick.id, this.lastDelivered)) this.lastDelivered = tick.id;
    this.metrics?.ticksPublished.inc({ pair: tick.pair });
    if (confirm) this.confirm(tick.pair, Date.parse(tick.timestamp));
    channel.next(tick);
  }
}
