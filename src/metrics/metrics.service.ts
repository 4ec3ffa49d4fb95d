import { Injectable } from '@nestjs/common';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { TRANSPORTS, type DisconnectReason, type ErrorCode, type Transport } from '../shared/wire';
import { droppedLogLines, logOutputEnded } from '../logging/stdout-log';
import { buildInfo } from './build-info';
import { HttpMetrics } from './http-metrics';

/** What one process' registry holds, as prom-client's cluster aggregation takes it. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/**
 * Every metric the service exports, on its own registry. Labels are bounded sets (transport,
 * reason, source, outcome, configured pair, worker slot): never a client address or an id.
 *
 * With workers, a scrape on any worker reports the whole service: the primary gathers every
 * process' metrics and sums them with prom-client's AggregatorRegistry. Counters and the
 * connection gauges add up; a gauge that each process holds the same value of says so with its
 * `aggregator` (the window's size, the latest tick's age, a source's circuit).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly subscribers = new Gauge({ name: 'price_stream_subscribers', help: 'Open stream connections', labelNames: ['transport'] as const, registers: [this.registry] });
  readonly messagesSent = new Counter({ name: 'price_stream_messages_sent_total', help: 'Events written to subscribers', labelNames: ['transport'] as const, registers: [this.registry] });
  readonly resumes = new Counter({ name: 'price_stream_resumes_total', help: 'Subscriptions that asked to resume, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly disconnects = new Counter({ name: 'price_stream_disconnects_total', help: 'Stream connections ended, by reason', labelNames: ['transport', 'reason'] as const, registers: [this.registry] });
  readonly rejected = new Counter({ name: 'price_stream_connections_rejected_total', help: 'Stream connections refused (limits, shutdown)', labelNames: ['transport', 'code'] as const, registers: [this.registry] });
  readonly upstreamRequests = new Counter({ name: 'price_stream_upstream_requests_total', help: 'Requests to price sources, by outcome', labelNames: ['source', 'outcome'] as const, registers: [this.registry] });
  readonly upstreamLatency = new Histogram({
    name: 'price_stream_upstream_request_duration_seconds',
    help: 'Latency of requests to price sources',
    labelNames: ['source'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });
  readonly circuitState = new Gauge({
    name: 'price_stream_source_circuit_state',
    help: 'Circuit of each source: 0 closed, 1 half-open, 2 open',
    labelNames: ['source'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly priceJumps = new Counter({
    name: 'price_stream_price_jumps_total',
    help: 'Prices that moved more than MAX_JUMP_PCT from the last one, by source and outcome (held, confirmed, accepted, rejected)',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly pricesRejected = new Counter({
    name: 'price_stream_prices_rejected_total',
    help: 'Upstream prices not used, by source and reason (implausible, stale, deviation)',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });
  readonly pushFeedState = new Gauge({
    name: 'price_stream_push_feed_state',
    help: 'State of each push feed: 1 for its current state (disconnected, connected, subscribed, stale), 0 for the others; none while it does not run',
    labelNames: ['source', 'state'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly pushFrames = new Counter({
    name: 'price_stream_push_frames_total',
    help: 'Frames received from each push feed, by kind (quote, alive, ack, refused, ignored, garbage)',
    labelNames: ['source', 'kind'] as const,
    registers: [this.registry],
  });
  readonly pushReconnects = new Counter({
    name: 'price_stream_push_reconnects_total',
    help: 'Push feed connections replaced, by reason (closed, too_large, garbage, stale, ack_timeout)',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });
  readonly pushQuoteAge = new Gauge({
    name: 'price_stream_push_last_quote_age_seconds',
    help: 'Time since each push feed last delivered a quote of a configured pair (absent until its first)',
    labelNames: ['source'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly tickAge = new Gauge({ name: 'price_stream_latest_tick_age_seconds', help: 'Age of the latest tick of each pair', labelNames: ['pair'] as const, aggregator: 'max', registers: [this.registry] });
  readonly historySize = new Gauge({ name: 'price_stream_history_size', help: 'Ticks in the history window', aggregator: 'max', registers: [this.registry] });
  readonly workerSubscribers = new Gauge({
    name: 'price_stream_worker_subscribers',
    help: 'Open stream connections of each worker process (WORKERS > 1)',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });
  readonly tierSubscribers = new Gauge({
    name: 'price_stream_tier_subscribers',
    help: 'Open stream connections by tier (AUTH_TIER_CLAIM: one of AUTH_TIERS, other, or anonymous without a token); only with AUTH_* keys',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly ticksPublished = new Counter({ name: 'price_stream_ticks_published_total', help: 'Ticks committed to the stream', labelNames: ['pair'] as const, aggregator: 'max', registers: [this.registry] });
  readonly slowSubscribers = new Counter({
    name: 'price_stream_slow_subscribers_total',
    help: 'Subscribers whose backlog passed CLIENT_BUFFER_SIZE: switched to conflated delivery (CONFLATE_SLOW_MS) or disconnected',
    labelNames: ['transport', 'action'] as const,
    registers: [this.registry],
  });
  readonly deliveryLag = new Histogram({
    name: 'price_stream_delivery_lag_seconds',
    help: "Time from a tick's commit to its write to a subscriber",
    labelNames: ['transport'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'price_stream_http_request_duration_seconds',
    help: 'HTTP requests (REST, probes, metrics; SSE until its response head), by method, route template (unmatched for any other path) and status class',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'price_stream_build_info',
    help: 'Always 1: the version, Node version and git revision of the running build',
    labelNames: ['version', 'node_version', 'revision'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'price_stream_leader',
    help: 'Processes polling the upstreams: 1 in the Redis leader (or the one instance without REDIS_URL), else 0',
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'price_stream_ready',
    help: 'Outcome of the latest readiness check (GET /health/ready or /ready): 1 ready, 0 not ready (0 before the first check); with workers, 1 when one is',
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly readinessChanges = new Counter({
    name: 'price_stream_readiness_changes_total',
    help: 'Times the readiness check changed its answer (ready to not ready or back)',
    registers: [this.registry],
  });
  readonly workerRestarts = new Counter({
    name: 'price_stream_worker_restarts_total',
    help: 'Workers restarted by the primary after exiting unexpectedly (WORKERS > 1), by worker slot',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });
  readonly redisTailLag = new Gauge({
    name: 'price_stream_redis_tail_lag_seconds',
    help: "Time from the commit of the latest tick read from the Redis stream to its read by this instance's tail (REDIS_URL)",
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly logLinesDropped = new Counter({
    name: 'price_stream_log_lines_dropped_total',
    help: 'Log lines never written to stdout: its reader fell more than 16 MiB behind, or is gone (EPIPE: what was buffered and everything after)',
    registers: [this.registry],
    collect() {
      this.reset();
      this.inc(droppedLogLines());
    },
  });
  readonly logOutputEnded = new Gauge({
    name: 'price_stream_log_output_ended',
    help: "1 when this process' logging has ended (its stdout reader is gone: EPIPE) until it restarts, else 0; with workers, 1 when any has",
    aggregator: 'max',
    registers: [this.registry],
    collect() {
      this.set(logOutputEnded() ? 1 : 0);
    },
  });
  readonly http = new HttpMetrics(this.httpDuration);

  private readonly collectors: (() => void)[] = [];
  private lastReady: boolean | undefined;
  /** With workers: the whole service's metrics, from the primary. */
  private gather: (() => Promise<string>) | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set(buildInfo(), 1);
  }

  /** Records a readiness check's answer (and a change from the previous one). */
  readiness(ready: boolean): void {
    if (this.lastReady !== undefined && this.lastReady !== ready) this.readinessChanges.inc();
    this.lastReady = ready;
    this.ready.set(ready ? 1 : 0);
  }

  /** Scrapes answer with the whole service's metrics from now on (a worker's, see ClusterWorkerModule). */
  gatherWith(gather: () => Promise<string>): void {
    this.gather = gather;
  }

  /** Registers a function that refreshes gauges right before each scrape. */
  onScrape(collector: () => void): void {
    this.collectors.push(collector);
  }

  async scrape(): Promise<string> {
    if (this.gather) return this.gather();
    this.collect();
    return this.registry.metrics();
  }

  /** This process' metrics, for the primary to aggregate. */
  async json(): Promise<MetricsJson> {
    this.collect();
    return (await this.registry.getMetricsAsJSON()) as MetricsJson;
  }

  private collect(): void {
    for (const c of this.collectors) c();
  }

  /** Every process' metrics as one exposition (prom-client's cluster aggregation). */
  static aggregate(parts: MetricsJson[]): Promise<string> {
    return AggregatorRegistry.aggregate(parts).metrics();
  }

  // Bound label children: this sits on the per-subscriber, per-tick path.
  private readonly sentBy = Object.fromEntries(TRANSPORTS.map((t) => [t, this.messagesSent.labels(t)])) as Record<Transport, ReturnType<Counter['labels']>>;
  private readonly lagBy = Object.fromEntries(TRANSPORTS.map((t) => [t, this.deliveryLag.labels(t)])) as Record<Transport, ReturnType<Histogram['labels']>>;

  /**
   * Records messages handed to `count` subscribers of one transport at once, with the lag since
   * the tick was committed (its id's millisecond); a reset has none.
   */
  sent(transport: Transport, committedAtMs: number | undefined, count = 1): void {
    if (count <= 0) return;
    this.sentBy[transport].inc(count);
    if (committedAtMs !== undefined) this.lagBy[transport].observe(Math.max(0, Date.now() - committedAtMs) / 1000);
  }

  disconnected(transport: Transport, reason: DisconnectReason): void {
    this.disconnects.inc({ transport, reason });
  }

  refused(transport: Transport, code: ErrorCode): void {
    this.rejected.inc({ transport, code });
  }

  resumed(outcome: 'recovered' | 'reset'): void {
    this.resumes.inc({ outcome });
  }

  slow(transport: Transport, action: 'conflated' | 'disconnected'): void {
    this.slowSubscribers.inc({ transport, action });
  }
}
