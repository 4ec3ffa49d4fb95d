import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Observable, Subscription } from 'rxjs';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { ResumePoint } from '../domain/resume';
import { byTickId } from '../domain/tick-id';
import type { ResetEvent, Tick } from '../shared/wire';
import { PairChannel } from './pair-channel';
import { TickLog, type ReadAfterResult, type WriteFailure } from './tick-log';

/**
 * The price stream: one ReplaySubject per pair (PairChannel) holds the latest tick and carries
 * the live ones, in id order; the log delivers each committed tick straight into its pair's
 * channel and keeps the window that resumes read. StreamHub is the one subscriber of the
 * channels that every transport goes through; this service only keeps the books beside it.
 */
@Injectable()
export class PriceStreamService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(PriceStreamService.name);
  private readonly channels = new Map<string, PairChannel>();
  private readonly committed = new Subscription();
  /** Gaps in the live stream reported by the log (see TickLog.gaps$). */
  readonly gaps$: Observable<ResetEvent>;

  constructor(
    private readonly log: TickLog,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    for (const pair of config.pairs) {
      const channel = new PairChannel();
      this.channels.set(pair, channel);
      this.committed.add(channel.subscribe((tick) => metrics.ticksPublished.inc({ pair: tick.pair })));
    }
    log.deliverTo(this.channels);
    this.committed.add(log.confirmations$.subscribe((confirmation) => log.confirmedThrough(confirmation)));
    this.gaps$ = log.gaps$;
    metrics.onScrape(() => {
      metrics.historySize.set(this.log.stats().size);
      const now = Date.now();
      for (const [pair, { latest }] of this.channels) if (latest) metrics.tickAge.set({ pair }, Math.max(0, now - Date.parse(latest.timestamp)) / 1000);
    });
  }

  async onModuleInit(): Promise<void> {
    const restored = (await this.log.latestPerPair()).sort(byTickId);
    // Straight into the channels, not through the log's commit: restored ticks may be old, they confirm nothing.
    for (const tick of restored) this.channels.get(tick.pair)?.next(tick);
    if (restored.length > 0) this.logger.log({ msg: 'restored latest ticks from history', count: restored.length });
  }

  /** Since when ticks cannot be written to the log, and why (null: they can, as far as is known). */
  get writeFailure(): WriteFailure | null {
    return this.log.writeFailure;
  }

  /** The pair's latest tick: the one its channel replays. */
  latest(pair: string): Tick | undefined {
    return this.channels.get(pair)?.latest;
  }

  /** The tick a new subscriber of the pair gets first, read through the channel's replay (a join without a resume point). */
  replayed(pair: string): Tick | undefined {
    return this.channels.get(pair)?.replayed();
  }

  /** Whether the pair's price was confirmed within STALE_AFTER_MS. */
  isFresh(pair: string, nowMs = Date.now()): boolean {
    const at = this.log.lastConfirmedAt(pair);
    return at !== undefined && nowMs - at <= this.config.staleAfterMs;
  }

  lastConfirmedAt(pair: string): number | undefined {
    return this.log.lastConfirmedAt(pair);
  }

  history(pair: string, sinceMs: number | undefined, limit: number) {
    return this.log.history(pair, sinceMs, limit);
  }

  stats() {
    return this.log.stats();
  }

  /** A pair's channel: its latest tick at once (if any), then every live tick, in id order; completes on shutdown. */
  live(pair: string): Observable<Tick> {
    const channel = this.channels.get(pair);
    if (!channel) throw new Error(`pair ${pair} is not configured`);
    return channel.asObservable();
  }

  /** The ticks of `pairs` after a resume point, or the reset that says the window does not reach back (counted as a resume). */
  async readAfter(resume: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    const result = await this.log.readAfter(resume, pairs);
    this.metrics.resumed(result.complete ? 'recovered' : 'reset');
    return result;
  }

  /** Completes the channels: the hub then ends every stream with a reconnect hint. */
  beforeApplicationShutdown(): void {
    this.log.deliverTo(null);
    this.committed.unsubscribe();
    for (const channel of this.channels.values()) channel.complete();
  }
}
