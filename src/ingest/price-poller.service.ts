import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { observePushFeeds } from '../metrics/push-feed.metrics';
import type { SourceName } from '../shared/wire';
import type { PushFeedStatus } from '../sources/push-feed';
import { SourceRegistry } from '../sources/source-registry';
import { IngestPolicy, type PollOutcome } from './ingest-policy';
import { SourceCaller, type SourceCircuit } from './source-caller';

export type PollReport = PollOutcome & {
  /** False when the poll did not run: polling is disabled or stopped, or a poll was still running. */
  ran: boolean;
};

export type { SourceCircuit } from './source-caller';

/** What readiness shows of the sources: whether this process polls, each circuit, each push feed. */
export type SourcesReport = {
  polling: boolean;
  circuits: { source: SourceName; state: SourceCircuit['state']; consecutiveFailures: number; nextAttemptAt: string | null; lastError: string | null }[];
  push: PushFeedStatus[];
};

/** The poller that polls for this process when it does not itself (a worker's primary). */
export type PollerRemote = { refresh(pairs: readonly string[]): Promise<PollReport>; report(): Promise<SourcesReport> };

export type PollerStats = {
  /** Polls that ran. */
  polls: number;
  /** Scheduled polls skipped because the previous one was still running. */
  overruns: number;
};

const OFFLINE_HINT = 'for offline use run PRICE_SOURCES=simulated npm start';

/**
 * The scheduler of the ingest: polls every POLL_INTERVAL_MS (and once at start-up) through the
 * policy of PRICE_MODE (FailoverPolicy or MedianPolicy), which asks the sources through the
 * SourceCaller and publishes what is plausible to the PublishPort. It starts and stops the push
 * feeds with the polling, and reports the sources for readiness.
 *
 * Multi-instance seam: `setEnabled(false)` stops polling (and cancels what is in flight) on an
 * instance that is not the leader; `setEnabled(true)` resumes with an immediate poll. Call it
 * from another provider's `onModuleInit` to keep the start-up poll from running.
 */
@Injectable()
export class PricePollerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  static readonly INTERVAL_NAME = 'price-poller';
  private readonly logger = new Logger(PricePollerService.name);
  private running: Promise<PollReport> | null = null;
  /** Aborted on stop and on disable; replaced on enable. */
  private cancel = new AbortController();
  private enabled = true;
  private remote: PollerRemote | undefined;
  private started = false;
  private stopped = false;
  private allDownWarned = false;
  private readonly counters: PollerStats = { polls: 0, overruns: 0 };

  constructor(
    private readonly registry: SourceRegistry,
    private readonly policy: IngestPolicy,
    private readonly caller: SourceCaller,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    metrics: MetricsService,
  ) {
    metrics.onScrape(() => metrics.leader.set(this.started && !this.stopped && this.enabled && !this.remote ? 1 : 0));
    observePushFeeds(registry.feeds.values(), metrics);
  }

  onApplicationBootstrap(): void {
    this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Schedules the polls and runs the first one at once. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.scheduler.addInterval(PricePollerService.INTERVAL_NAME, setInterval(() => void this.pollOnce(), this.config.pollIntervalMs));
    // A worker whose primary polls, or an instance waiting for the leader lease, says so instead.
    const msg = this.remote ? 'not polling: the primary polls for this worker' : this.enabled ? 'polling' : 'not polling until enabled (leader election)';
    this.logger.log({ msg, sources: this.registry.sources.map((s) => s.name), push: [...this.registry.feeds.keys()], pairs: this.config.pairs, intervalMs: this.config.pollIntervalMs });
    if (this.enabled) this.policy.startFeeds();
    void this.pollOnce();
  }

  /** Stops the interval, aborts requests in flight and waits for the running poll to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scheduler.doesExist('interval', PricePollerService.INTERVAL_NAME)) {
      this.scheduler.deleteInterval(PricePollerService.INTERVAL_NAME);
    }
    this.cancel.abort(new Error('price poller stopped'));
    this.policy.stopFeeds();
    this.policy.clearDeferred();
    await this.running;
  }

  /** The leader seam: only an enabled poller polls. Disabling cancels requests in flight. */
  setEnabled(enabled: boolean): void {
    if (enabled === this.enabled) return;
    this.enabled = enabled;
    // Only the leader holds exchange connections.
    if (!enabled) {
      this.cancel.abort(new Error('price polling disabled'));
      this.policy.stopFeeds();
      return;
    }
    this.cancel = new AbortController();
    if (this.started && !this.stopped) {
      this.policy.startFeeds();
      void this.pollOnce();
    }
  }

  /**
   * A worker without Redis: its primary polls for the whole service. Polling stays off here;
   * a refresh and the sources' report are the primary's.
   */
  delegateTo(remote: PollerRemote): void {
    this.remote = remote;
    this.setEnabled(false);
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** The sources as readiness shows them (the primary's, on a worker that delegates). */
  sourcesReport(): Promise<SourcesReport> {
    if (this.remote) return this.remote.report();
    const circuits = this.sourceCircuits().map((c) => ({
      source: c.source,
      state: c.state,
      consecutiveFailures: c.consecutiveFailures,
      nextAttemptAt: c.nextAttemptAt,
      lastError: c.lastError?.message ?? null,
    }));
    return Promise.resolve({ polling: this.isEnabled, circuits, push: this.pushFeeds() });
  }

  /** Each push feed's state, for readiness details. */
  pushFeeds(): PushFeedStatus[] {
    return [...this.registry.feeds.values()].map((feed) => feed.status());
  }

  /** Each source's circuit, in PRICE_SOURCES order (for readiness details and metrics). */
  sourceCircuits(): SourceCircuit[] {
    return this.caller.sourceCircuits();
  }

  /** One scheduled poll of every configured pair; skipped (and counted) while the last one runs. */
  pollOnce(): Promise<PollReport> {
    if (this.running) {
      this.counters.overruns++;
      this.logger.debug({ msg: 'poll skipped: the previous one is still running', overruns: this.counters.overruns });
      return Promise.resolve({ ran: false, priced: [], unpriced: [...this.config.pairs] });
    }
    return this.runExclusive(this.config.pairs);
  }

  /**
   * Polls now (for an admin route): the given configured pairs, or all. While a poll is
   * running, answers with that poll's report instead of starting another.
   */
  refresh(pairs: readonly string[] = this.config.pairs): Promise<PollReport> {
    if (this.remote) return this.remote.refresh(pairs);
    if (this.running) return this.running;
    return this.runExclusive(pairs.filter((pair) => this.config.pairSet.has(pair)));
  }

  stats(): PollerStats {
    return { ...this.counters };
  }

  private runExclusive(pairs: readonly string[]): Promise<PollReport> {
    if (!this.enabled || this.stopped) return Promise.resolve({ ran: false, priced: [], unpriced: [...pairs] });
    const poll = this.poll(pairs, this.cancel.signal).finally(() => {
      if (this.running === poll) this.running = null;
    });
    this.running = poll;
    return poll;
  }

  private async poll(pairs: readonly string[], signal: AbortSignal): Promise<PollReport> {
    this.counters.polls++;
    const { priced, unpriced } = await this.policy.poll(pairs, signal);
    if (!signal.aborted && pairs.length > 0) this.noteReachability(priced.length > 0);
    return { ran: true, priced, unpriced };
  }

  /** One warning when no source prices anything, and one line when prices come back. */
  private noteReachability(anyPriced: boolean): void {
    if (!anyPriced && !this.allDownWarned) {
      this.allDownWarned = true;
      this.logger.warn({
        msg: `No price source answered for any pair: the upstreams look unreachable. Polling goes on with backoff; ${OFFLINE_HINT}`,
        sources: this.sourceCircuits().map((c) => ({ source: c.source, state: c.state, lastError: c.lastError?.message ?? null })),
      });
    } else if (anyPriced && this.allDownWarned) {
      this.allDownWarned = false;
      this.logger.log({ msg: 'prices are flowing again' });
    }
  }
}
