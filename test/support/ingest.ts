import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig, type AppConfig } from '../../src/config/app-config';
import { PricePollerService } from '../../src/ingest/price-poller.service';
import { policyFor } from '../../src/ingest/poller.module';
import type { PublishPort } from '../../src/ingest/publish-port';
import { SourceCaller } from '../../src/ingest/source-caller';
import { MetricsService } from '../../src/metrics/metrics.service';
import type { SourceName } from '../../src/shared/wire';
import { SourceError, type PriceSource, type Quote, type SourceErrorKind, type SourceResult } from '../../src/sources/price-source';
import type { PushFeed, PushFeedObserver, PushFeedStatus, QuoteSink } from '../../src/sources/push-feed';
import { SourceRegistry } from '../../src/sources/source-registry';
import { MemoryTickLog } from '../../src/stream/memory-tick-log';
import { PriceStreamService } from '../../src/stream/price-stream.service';

/** The unit specs of src/ingest: their clock, interval and pairs, their fake sources and feed. */
export const START = Date.parse('2026-11-21T21:00:00.000Z');
export const INTERVAL_MS = 1000;
export const TIMEOUT_MS = 500;
export const PAIRS = ['BTC-USD', 'ETH-USD'];

/** The ingest as PollerModule wires it: a SourceCaller, the policy of PRICE_MODE over `port`, and the scheduler. */
export function newPoller(registry: SourceRegistry, port: PublishPort, config: AppConfig, metrics = new MetricsService(), scheduler = new SchedulerRegistry()): PricePollerService {
  const caller = new SourceCaller(registry, config, metrics);
  return new PricePollerService(registry, policyFor(config, registry, caller, port, metrics), caller, config, scheduler, metrics);
}

/**
 * The ingest over a PriceStreamService as its port, with fake sources, on fake timers: `build`
 * wires it, `start` runs the start-up poll, `poll` lets one interval pass.
 */
export class IngestRig {
  config!: AppConfig;
  metrics!: MetricsService;
  stream!: PriceStreamService;
  /** The log, the poller's publish port. */
  log!: MemoryTickLog;
  scheduler!: SchedulerRegistry;
  poller!: PricePollerService;
  logs!: ReturnType<typeof quietLogs>;

  constructor(private readonly defaults: Record<string, string>) {}

  build(sources: PriceSource[], env: Record<string, string> = {}, feeds = new Map<SourceName, PushFeed>()): PricePollerService {
    this.config = loadConfig({ ...this.defaults, ...env });
    this.metrics = new MetricsService();
    this.log = new MemoryTickLog(this.config);
    this.stream = new PriceStreamService(this.log, this.config, this.metrics);
    this.scheduler = new SchedulerRegistry();
    this.poller = newPoller(new SourceRegistry(sources, feeds), this.log, this.config, this.metrics, this.scheduler);
    return this.poller;
  }

  /** Starts polling and lets the immediate first poll finish. */
  async start(): Promise<void> {
    this.poller.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
  }

  poll(): Promise<void> {
    return jest.advanceTimersByTimeAsync(INTERVAL_MS);
  }

  /** Every price published for the pair, oldest first. */
  async published(pair = 'BTC-USD'): Promise<number[]> {
    return (await this.stream.history(pair, undefined, 100)).ticks.map((t) => t.price);
  }

  counted(counter: 'priceJumps' | 'pricesRejected', labels: Record<string, string>): Promise<number> {
    return counted(this.metrics, counter, labels);
  }

  warnings(): string[] {
    return messages(this.logs.warn);
  }
}

/** An IngestRig with these configuration defaults, on fake timers from START and quiet logs for each test. */
export function useIngestRig(defaults: Record<string, string>): IngestRig {
  const rig = new IngestRig(defaults);
  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    rig.logs = quietLogs();
  });
  afterEach(async () => {
    await rig.poller.beforeApplicationShutdown();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });
  return rig;
}

/** Mutes the Nest logger; the spies of the levels a spec reads. */
export function quietLogs(): Record<'warn' | 'log' | 'debug' | 'error', jest.SpyInstance> {
  const spy = (level: 'warn' | 'log' | 'debug' | 'error') => jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
  return { warn: spy('warn'), log: spy('log'), debug: spy('debug'), error: spy('error') };
}

/** The messages a logger spy got. */
export const messages = (spy: jest.SpyInstance): string[] => spy.mock.calls.map((c: unknown[]) => (c[0] as { msg: string }).msg);

/** The sum of a counter's values with these labels. */
export async function counted(metrics: MetricsService, counter: 'priceJumps' | 'pricesRejected', labels: Record<string, string>): Promise<number> {
  const { values } = await metrics[counter].get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l)).reduce((n, v) => n + v.value, 0);
}

export type Behaviour = (pairs: readonly string[], signal: AbortSignal) => Promise<SourceResult>;

/** An in-process source whose answer a test sets, recording every call. */
export class FakeSource implements PriceSource {
  readonly calls: string[][] = [];
  readonly signals: AbortSignal[] = [];
  readonly unsupported = new Set<string>();

  constructor(
    readonly name: SourceName,
    public behaviour: Behaviour,
    readonly batches = true,
  ) {}

  supports(pair: string): boolean {
    return !this.unsupported.has(pair);
  }

  fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    this.calls.push([...pairs]);
    this.signals.push(signal);
    return this.behaviour(pairs, signal);
  }
}

export const answers =
  (price: number, sourceTimestamp?: string): Behaviour =>
  (pairs) =>
    Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price, ...(sourceTimestamp && { sourceTimestamp }) })), failed: [] });

export const throws =
  (kind: SourceErrorKind, retryAfterMs?: number): Behaviour =>
  () =>
    Promise.reject(new SourceError('kraken', kind, `fake ${kind}`, retryAfterMs));

/** Never settles, whatever the signal says: the worst a source can do. */
export const hangsForever: Behaviour = () => new Promise<SourceResult>(() => undefined);

/** Settles only when aborted, as a real source does. */
export const hangsUntilAborted: Behaviour = (_pairs, signal) =>
  new Promise<SourceResult>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

/**
 * A push feed a test drives: what it serves now, and trades it pushes to the sink it was last
 * started with (even once stopped: a late one, which the policy must not take).
 */
export class FakeFeed implements PushFeed {
  observer: PushFeedObserver | undefined;
  readonly serving = new Map<string, Quote>();
  running = false;
  private sink: QuoteSink | undefined;

  constructor(readonly name: 'kraken' | 'coinbase') {}

  start(_pairs: readonly string[], sink: QuoteSink): void {
    this.running = true;
    this.sink = sink;
  }

  stop(): void {
    this.running = false;
  }

  current(pair: string): Quote | undefined {
    return this.running ? this.serving.get(pair) : undefined;
  }

  status(): PushFeedStatus {
    return {
      source: this.name,
      running: this.running,
      state: this.running ? 'subscribed' : 'disconnected',
      connected: this.running,
      up: [...this.serving.keys()],
      refused: [],
      lastFrameAt: null,
      lastQuoteAt: null,
      reconnects: 0,
    };
  }

  /** A trade the feed serves from now on and hands on. */
  trade(quote: Quote): void {
    this.serving.set(quote.pair, quote);
    this.sink?.(quote);
  }

  /** A quote handed on only (the feed does not serve it). */
  push(quote: Quote): void {
    this.sink?.(quote);
  }
}
