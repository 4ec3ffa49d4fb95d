import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { SourceName } from '../shared/wire';
import { SourceError, type PriceSource, type SourceResult } from '../sources/price-source';
import { SourceRegistry } from '../sources/source-registry';
import { withDeadline } from '../util/deadline';
import { CircuitBreaker, type CircuitSnapshot } from './circuit-breaker';

export type SourceCircuit = CircuitSnapshot & { source: SourceName };

/**
 * A source that ignores its abort signal must not hold a poll forever: past its own timeout
 * (plus this grace, so the source's own, more precise error normally wins) the poll moves on
 * and the request counts as a timeout. Its pairs stay "in flight" for that source until it ends.
 */
const DEADLINE_GRACE_MS = 1000;

const CIRCUIT_GAUGE = { closed: 0, half_open: 1, open: 2 } as const;

/**
 * Asks the sources for the policies: one request per call, with a deadline, cancelled with the
 * poll's signal, never twice at once for the same source and pair (the in-flight set), and only
 * while the source's circuit lets it. The policies report what an answer was worth (`settle`):
 * sources whose circuit is open are skipped, so a failing source is asked only a few times a
 * minute while the others serve.
 */
@Injectable()
export class SourceCaller {
  private readonly logger = new Logger(SourceCaller.name);
  private readonly circuits = new Map<SourceName, CircuitBreaker>();
  /** `source:pair` for every request that has not settled yet. */
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly registry: SourceRegistry,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    for (const source of registry.sources) {
      this.circuits.set(source.name, new CircuitBreaker({ baseMs: config.pollIntervalMs, maxMs: config.sourceBackoffMaxMs }));
    }
    metrics.onScrape(() => {
      for (const c of this.sourceCircuits()) metrics.circuitState.set({ source: c.source }, CIRCUIT_GAUGE[c.state]);
    });
  }

  /** Each source's circuit, in PRICE_SOURCES order (for readiness details and metrics). */
  sourceCircuits(): SourceCircuit[] {
    return this.registry.sources.map((source) => ({ source: source.name, ...this.circuit(source).snapshot() }));
  }

  /** Asks one source for the pairs it supports and has not in flight, if its circuit lets it. */
  async ask(source: PriceSource, pairs: readonly string[], signal: AbortSignal): Promise<SourceResult | null> {
    let asked = pairs.filter((pair) => source.supports(pair) && !this.inFlight.has(`${source.name}:${pair}`));
    if (asked.length === 0 || signal.aborted) return null;
    const circuit = this.circuit(source);
    if (!circuit.tryAcquire()) return null;
    // A half-open circuit allows exactly one trial request.
    if (circuit.state === 'half_open' && !source.batches) asked = asked.slice(0, 1);
    try {
      return await this.request(source, asked, signal);
    } catch (err) {
      if (signal.aborted) circuit.release();
      else this.recordFailure(source, err);
      return null;
    }
  }

  /**
   * An answer with no usable price is a failure of the source (it backs off as if the request
   * had failed); one usable price, or only pairs the upstream does not list, is a success.
   */
  settle(source: PriceSource, anyUsable: boolean, problems: readonly SourceError[]): void {
    if (anyUsable || problems.length === 0) this.recordSuccess(source);
    else this.recordFailure(source, problems[0]);
  }

  /** The source failed (a request, or an answer another source contradicted): its circuit opens. */
  recordFailure(source: PriceSource, err: unknown): void {
    const circuit = this.circuit(source);
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

  /** Calls the source with a deadline; marks its pairs in flight until the call really ends. */
  private request(source: PriceSource, pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    const keys = pairs.map((pair) => `${source.name}:${pair}`);
    for (const key of keys) this.inFlight.add(key);
    const giveUp = new AbortController();
    const call = source.fetch(pairs, AbortSignal.any([signal, giveUp.signal])).finally(() => {
      for (const key of keys) this.inFlight.delete(key);
    });
    call.catch(() => undefined); // it may lose the race below and settle later

    // The poll's own cancellation (shutdown, a new poll) ends the wait at once; the deadline gives up on the source.
    let onAbort: (() => void) | undefined;
    const cancelled = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    cancelled.catch(() => undefined);
    const ms = this.config.sourceTimeoutMs + DEADLINE_GRACE_MS;
    const endTimer = this.metrics.upstreamLatency.startTimer({ source: source.name });
    return withDeadline(Promise.race([call, cancelled]), ms, () => {
      giveUp.abort();
      return new SourceError(source.name, 'timeout', `no answer within ${ms} ms`);
    }).then(
      (result) => {
        this.metrics.upstreamRequests.inc({ source: source.name, outcome: 'ok' });
        return result;
      },
      (err: unknown) => {
        const outcome = signal.aborted ? 'cancelled' : err instanceof SourceError ? err.kind : 'error';
        this.metrics.upstreamRequests.inc({ source: source.name, outcome });
        throw err;
      },
    ).finally(() => {
      endTimer();
      if (onAbort) signal.removeEventListener('abort', onAbort);
    });
  }

  private recordSuccess(source: PriceSource): void {
    const circuit = this.circuit(source);
    const recovering = circuit.state !== 'closed';
    circuit.onSuccess();
    if (recovering) this.logger.log({ msg: 'source answers again; circuit closed', source: source.name });
  }

  private circuit(source: PriceSource): CircuitBreaker {
    const circuit = this.circuits.get(source.name);
    if (!circuit) throw new Error(`no circuit for source ${source.name}`);
    return circuit;
  }
}
