import { Injectable, Logger, Optional, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { SourceName } from '../shared/wire';
import { SourceError, type PriceSource, type SourceResult } from '../sources/price-source';
import { SourceRegistry } from '../sources/source-registry';
import { PriceStreamService } from '../stream/price-stream.service';
import type { TickDraft } from '../stream/tick-log';
import { CircuitBreaker, type CircuitSnapshot } from './circuit-breaker';

export type PollReport = {
  /** False when the poll did not run: polling is disabled or stopped, or a poll was still running. */
  ran: boolean;
  /** The pairs that got a price, and from which source. */
  priced: { pair: string; source: SourceName }[];
  /** The pairs no source could price in this poll. */
  unpriced: string[];
};

export type SourceCircuit = CircuitSnapshot & { source: SourceName };

export type PollerStats = {
  /** Polls that ran. */
  polls: number;
  /** Scheduled polls skipped because the previous one was still running. */
  overruns: number;
};

/**
 * A source that ignores its abort signal must not hold a poll forever: past its own timeout
 * (plus this grace, so the source's own, more precise error normally wins) the poll moves on
 * and the request counts as a timeout. Its pairs stay "in flight" for that source until it ends.
 */
const DEADLINE_GRACE_MS = 1000;

const CIRCUIT_GAUGE = { closed: 0, half_open: 1, open: 2 } as const;

const OFFLINE_HINT = 'for offline use run PRICE_SOURCES=simulated npm start';

/**
 * Polls the upstreams every POLL_INTERVAL_MS (and once at start-up) and publishes what they
 * answer. Each poll tries the pairs still unpriced on each source in PRICE_SOURCES order,
 * skipping sources whose circuit is open: a failing source is asked only a few times a minute
 * while the next one serves. Problems of single pairs fall to the next source without counting
 * against the circuit; failures of a whole request (timeout, 5xx, 429, bad JSON, network, too
 * large) open it.
 *
 * Multi-instance seam: `setEnabled(false)` stops polling (and cancels what is in flight) on an
 * instance that is not the leader; `setEnabled(true)` resumes with an immediate poll. Call it
 * from another provider's `onModuleInit` to keep the start-up poll from running.
 */
@Injectable()
export class PricePollerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  static readonly INTERVAL_NAME = 'price-poller';
  private readonly logger = new Logger(PricePollerService.name);
  private readonly circuits = new Map<SourceName, CircuitBreaker>();
  /** `source:pair` for every request that has not settled yet. */
  private readonly inFlight = new Set<string>();
  private running: Promise<PollReport> | null = null;
  /** Aborted on stop and on disable; replaced on enable. */
  private cancel = new AbortController();
  private enabled = true;
  private started = false;
  private stopped = false;
  private allDownWarned = false;
  private readonly counters: PollerStats = { polls: 0, overruns: 0 };

  constructor(
    private readonly registry: SourceRegistry,
    private readonly stream: PriceStreamService,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    for (const source of registry.sources) {
      this.circuits.set(source.name, new CircuitBreaker({ baseMs: config.pollIntervalMs, maxMs: config.sourceBackoffMaxMs }));
    }
    metrics?.onScrape(() => {
      for (const c of this.sourceCircuits()) metrics.circuitState.set({ source: c.source }, CIRCUIT_GAUGE[c.state]);
    });
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
    this.logger.log({ msg: 'polling', sources: this.registry.sources.map((s) => s.name), pairs: this.config.pairs, intervalMs: this.config.pollIntervalMs });
    void this.pollOnce();
  }

  /** Stops the interval, aborts requests in flight and waits for the running poll to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scheduler.doesExist('interval', PricePollerService.INTERVAL_NAME)) {
      this.scheduler.deleteInterval(PricePollerService.INTERVAL_NAME);
    }
    this.cancel.abort(new Error('price poller stopped'));
    await this.running;
  }

  /** The leader seam: only an enabled poller polls. Disabling cancels requests in flight. */
  setEnabled(enabled: boolean): void {
    if (enabled === this.enabled) return;
    this.enabled = enabled;
    if (!enabled) {
      this.cancel.abort(new Error('price polling disabled'));
      return;
    }
    this.cancel = new AbortController();
    if (this.started && !this.stopped) void this.pollOnce();
  }

  get isEnabled(): boolean {
    return this.enabled;
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
    if (this.running) return this.running;
    return this.runExclusive(pairs.filter((pair) => this.config.pairSet.has(pair)));
  }

  /** Each source's circuit, in PRICE_SOURCES order (for readiness details and metrics). */
  sourceCircuits(): SourceCircuit[] {
    return this.registry.sources.map((source) => ({ source: source.name, ...this.circuit(source).snapshot() }));
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
    const remaining = new Set(pairs);
    const priced: PollReport['priced'] = [];
    for (const source of this.registry.sources) {
      if (remaining.size === 0 || signal.aborted) break;
      let asked = [...remaining].filter((pair) => source.supports(pair) && !this.inFlight.has(`${source.name}:${pair}`));
      if (asked.length === 0) continue;
      const circuit = this.circuit(source);
      if (!circuit.tryAcquire()) continue;
      // A half-open circuit allows exactly one trial request.
      if (circuit.state === 'half_open' && !source.batches) asked = asked.slice(0, 1);

      let result: SourceResult;
      try {
        result = await this.request(source, asked, signal);
      } catch (err) {
        if (signal.aborted) {
          circuit.release();
          break;
        }
        this.recordFailure(source, circuit, err);
        continue;
      }
      this.recordSuccess(source, circuit);

      const retrievedAt = new Date().toISOString();
      for (const quote of result.quotes) {
        if (!remaining.has(quote.pair) || signal.aborted) continue;
        if (!Number.isFinite(quote.price) || quote.price <= 0) {
          this.logger.error({ msg: 'source returned an invalid price; dropped', source: source.name, pair: quote.pair, price: String(quote.price) });
          continue;
        }
        remaining.delete(quote.pair);
        priced.push({ pair: quote.pair, source: source.name });
        await this.publish({
          pair: quote.pair,
          price: quote.price,
          timestamp: retrievedAt,
          ...(quote.sourceTimestamp !== undefined && { sourceTimestamp: quote.sourceTimestamp }),
          source: source.name,
        });
      }
      for (const { pair, error } of result.failed) {
        this.logger.debug({ msg: 'no price for a pair from this source', source: source.name, pair, kind: error.kind, error: error.message });
      }
    }

    if (!signal.aborted && pairs.length > 0) this.noteReachability(priced.length > 0);
    return { ran: true, priced, unpriced: [...remaining] };
  }

  /** Calls the source with a deadline; marks its pairs in flight until the call really ends. */
  private request(source: PriceSource, pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    const keys = pairs.map((pair) => `${source.name}:${pair}`);
    for (const key of keys) this.inFlight.add(key);
    const giveUp = new AbortController();
    const call = source.fetch(pairs, AbortSignal.any([signal, giveUp.signal])).finally(() => {
      for (const key of keys) this.inFlight.delete(key);
    });
    call.catch(() => undefined); // it may lose the race below and settle later

    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      const ms = this.config.sourceTimeoutMs + DEADLINE_GRACE_MS;
      timer = setTimeout(() => {
        giveUp.abort();
        reject(new SourceError(source.name, 'timeout', `no answer within ${ms} ms`));
      }, ms);
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const endTimer = this.metrics?.upstreamLatency.startTimer({ source: source.name });
    return Promise.race([call, deadline]).then(
      (result) => {
        this.metrics?.upstreamRequests.inc({ source: source.name, outcome: 'ok' });
        return result;
      },
      (err: unknown) => {
        const outcome = signal.aborted ? 'cancelled' : err instanceof SourceError ? err.kind : 'error';
        this.metrics?.upstreamRequests.inc({ source: source.name, outcome });
        throw err;
      },
    ).finally(() => {
      endTimer?.();
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    });
  }

  private async publish(draft: TickDraft): Promise<void> {
    try {
      await this.stream.publish(draft);
    } catch (err) {
      this.logger.error({ msg: 'could not publish a price', pair: draft.pair, source: draft.source, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private recordSuccess(source: PriceSource, circuit: CircuitBreaker): void {
    const recovering = circuit.state !== 'closed';
    circuit.onSuccess();
    if (recovering) this.logger.log({ msg: 'source answers again; circuit closed', source: source.name });
  }

  private recordFailure(source: PriceSource, circuit: CircuitBreaker, err: unknown): void {
    const error =
      err instanceof SourceError ? err : new SourceError(source.name, 'bad_shape', `unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    const wasClosed = circuit.state === 'closed';
    circuit.onFailure(error);
    const { consecutiveFailures, nextAttemptAt } = circuit.snapshot();
    const fields = { source: source.name, kind: error.kind, error: error.message, consecutiveFailures, nextAttemptAt };
    // Once per outage at info level; the repeats of a failing trial only at debug.
    if (wasClosed) this.logger.log({ msg: 'source failed; circuit open, backing off', ...fields });
    else this.logger.debug({ msg: 'source still failing; circuit re-opened', ...fields });
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

  private circuit(source: PriceSource): CircuitBreaker {
    const circuit = this.circuits.get(source.name);
    if (!circuit) throw new Error(`no circuit for source ${source.name}`);
    return circuit;
  }
}
