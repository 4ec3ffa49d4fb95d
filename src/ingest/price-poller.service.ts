import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { withDeadline } from '../util/deadline';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { observePushFeeds } from '../metrics/push-feed.metrics';
import { TICKER_FIELDS, type SourceName, type TickSource } from '../shared/wire';
import { SourceError, type PriceSource, type Quote, type SourceResult } from '../sources/price-source';
import type { PushFeedStatus } from '../sources/push-feed';
import { SourceRegistry } from '../sources/source-registry';
import { PriceStreamService } from '../stream/price-stream.service';
import { changes, type TickDraft } from '../stream/tick-log';
import { CircuitBreaker, type CircuitSnapshot } from './circuit-breaker';
import { checkQuote, JumpGuard, median, pctApart } from './price-checks';

export type PollReport = {
  /** False when the poll did not run: polling is disabled or stopped, or a poll was still running. */
  ran: boolean;
  /** The pairs that got a price, and from which source (`composite` in PRICE_MODE=median). */
  priced: { pair: string; source: TickSource }[];
  /** The pairs no source could price in this poll. */
  unpriced: string[];
};

export type SourceCircuit = CircuitSnapshot & { source: SourceName };

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

type Candidate = { source: SourceName; quote: Quote };

/** A quote as a tick to publish, with the ticker fields the upstream gave. */
function draftOf(quote: Quote, source: SourceName, retrievedAt: string): TickDraft {
  const draft: TickDraft = { pair: quote.pair, price: quote.price, timestamp: retrievedAt, source };
  if (quote.sourceTimestamp !== undefined) draft.sourceTimestamp = quote.sourceTimestamp;
  for (const name of TICKER_FIELDS) {
    const value = quote[name];
    if (value !== undefined) draft[name] = value;
  }
  return draft;
}

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
 * answer, once it is plausible. In PRICE_MODE=failover each poll tries the pairs still unpriced
 * on each source in PRICE_SOURCES order; in PRICE_MODE=median it asks every source and
 * publishes the median of those that agree. Sources whose circuit is open are skipped: a
 * failing source is asked only a few times a minute while the others serve. Failures of a
 * whole request (timeout, 5xx, 429, bad JSON, network, too large) open the circuit, and so
 * does an answer with no usable price (NaN, zero, out of range, stale by its own time, another
 * pair's). A pair the upstream does not list falls to the next source without counting.
 *
 * Before anything is published: the price is in PRICE_RANGE, fresh by the upstream's own time,
 * and within MAX_JUMP_PCT of the last one; a jump waits for a second source (or for
 * JUMP_CONFIRMATIONS answers in a row). At most one tick per pair per MIN_TICK_INTERVAL_MS.
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
  private remote: PollerRemote | undefined;
  private started = false;
  private stopped = false;
  private allDownWarned = false;
  private readonly counters: PollerStats = { polls: 0, overruns: 0 };
  private readonly jumps: JumpGuard;
  /** When each pair last got a tick (only with MIN_TICK_INTERVAL_MS). */
  private readonly lastTickAt = new Map<string, number>();
  /** Ticks waiting for the rest of their pair's MIN_TICK_INTERVAL_MS; the latest wins. */
  private readonly deferred = new Map<string, { draft: TickDraft; timer: NodeJS.Timeout }>();
  /** The source that priced each pair in the last failover poll: only its push feed publishes between polls. */
  private readonly servedBy = new Map<string, SourceName>();

  constructor(
    private readonly registry: SourceRegistry,
    private readonly stream: PriceStreamService,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    private readonly metrics: MetricsService,
  ) {
    this.jumps = new JumpGuard(config.maxJumpPct, config.jumpConfirmations);
    for (const source of registry.sources) {
      this.circuits.set(source.name, new CircuitBreaker({ baseMs: config.pollIntervalMs, maxMs: config.sourceBackoffMaxMs }));
    }
    metrics.onScrape(() => {
      for (const c of this.sourceCircuits()) metrics.circuitState.set({ source: c.source }, CIRCUIT_GAUGE[c.state]);
      metrics.leader.set(this.started && !this.stopped && this.enabled && !this.remote ? 1 : 0);
    });
    for (const [name, feed] of registry.feeds) feed.onQuote = (quote) => this.onPushed(name, quote);
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
    if (this.enabled) this.startFeeds();
    void this.pollOnce();
  }

  /** Stops the interval, aborts requests in flight and waits for the running poll to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scheduler.doesExist('interval', PricePollerService.INTERVAL_NAME)) {
      this.scheduler.deleteInterval(PricePollerService.INTERVAL_NAME);
    }
    this.cancel.abort(new Error('price poller stopped'));
    this.stopFeeds();
    for (const { timer } of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
    await this.running;
  }

  /** The leader seam: only an enabled poller polls. Disabling cancels requests in flight. */
  setEnabled(enabled: boolean): void {
    if (enabled === this.enabled) return;
    this.enabled = enabled;
    // Only the leader holds exchange connections.
    if (!enabled) {
      this.cancel.abort(new Error('price polling disabled'));
      this.stopFeeds();
      return;
    }
    this.cancel = new AbortController();
    if (this.started && !this.stopped) {
      this.startFeeds();
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

  private startFeeds(): void {
    for (const feed of this.registry.feeds.values()) feed.start(this.config.pairs);
  }

  private stopFeeds(): void {
    for (const feed of this.registry.feeds.values()) feed.stop();
  }

  /**
   * A pushed trade is published at once when its source is the one serving the pair (or none
   * is yet), it is plausible and fresh, and it is no jump. A jump waits for the next poll, which
   * asks a second source; in median mode the composite is made at each poll.
   */
  private onPushed(source: SourceName, quote: Quote): void {
    if (!this.enabled || this.stopped || !this.started || this.config.priceMode === 'median') return;
    if (!this.config.pairSet.has(quote.pair)) return;
    const servedBy = this.servedBy.get(quote.pair);
    if (servedBy !== undefined && servedBy !== source) return;
    const error = checkQuote(source, quote, Date.now(), this.config.staleAfterMs);
    if (error) {
      this.metrics.pricesRejected.inc({ source, reason: error.kind });
      this.logger.debug({ msg: 'pushed price not used', source, pair: quote.pair, price: quote.price, kind: error.kind, error: error.message });
      return;
    }
    if (this.jumps.isJump(quote.price, this.reference(quote.pair))) {
      this.logger.debug({ msg: 'pushed price left for the next poll to check', source, pair: quote.pair, price: quote.price });
      return;
    }
    this.jumps.clear(quote.pair);
    void this.emit(draftOf(quote, source, new Date().toISOString()));
  }

  /**
   * Splits pairs into those the source's push feed serves now (plausible, fresh by the
   * exchange's time) and those to ask its REST endpoint for, in the same poll.
   */
  private pushedQuotes(source: PriceSource, pairs: Iterable<string>): { pushed: Quote[]; viaRest: string[] } {
    const feed = this.registry.feeds.get(source.name);
    const pushed: Quote[] = [];
    const viaRest: string[] = [];
    const now = Date.now();
    for (const pair of pairs) {
      const quote = feed?.current(pair);
      if (quote && !checkQuote(source.name, quote, now, this.config.staleAfterMs)) pushed.push(quote);
      else viaRest.push(pair);
    }
    return { pushed, viaRest };
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
    if (this.remote) return this.remote.refresh(pairs);
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
    const { priced, unpriced } = this.config.priceMode === 'median' ? await this.pollMedian(pairs, signal) : await this.pollFailover(pairs, signal);
    if (!signal.aborted && pairs.length > 0) this.noteReachability(priced.length > 0);
    return { ran: true, priced, unpriced };
  }

  /**
   * PRICE_MODE=failover: each source in turn prices the pairs still unpriced. A jump is held
   * back and stays unpriced, so that the next source is asked for it in the same poll.
   */
  private async pollFailover(pairs: readonly string[], signal: AbortSignal): Promise<Omit<PollReport, 'ran'>> {
    const remaining = new Set(pairs);
    const priced: PollReport['priced'] = [];
    /** Jumps held back in this poll, waiting for a second source. */
    const held = new Map<string, { draft: TickDraft; source: PriceSource }>();
    const done = (draft: TickDraft): Promise<void> => {
      remaining.delete(draft.pair);
      priced.push({ pair: draft.pair, source: draft.source });
      if (draft.source !== 'composite') this.servedBy.set(draft.pair, draft.source);
      return this.emit(draft);
    };
    for (const source of this.registry.sources) {
      if (remaining.size === 0 || signal.aborted) break;
      const { pushed, viaRest } = this.pushedQuotes(source, remaining);
      const result = viaRest.length > 0 ? await this.ask(source, viaRest, signal) : null;
      if (!result && pushed.length === 0) continue;
      const retrievedAt = new Date().toISOString();
      const usable = [...pushed];
      if (result) {
        const screened = this.screen(source, result, remaining);
        this.settle(source, screened.usable.length > 0, screened.problems);
        usable.push(...screened.usable);
      }
      for (const quote of usable) {
        if (signal.aborted) break;
        const draft = draftOf(quote, source.name, retrievedAt);
        const reference = this.reference(quote.pair);
        const pending = held.get(quote.pair);
        if (pending) {
          held.delete(quote.pair);
          if (this.agree(quote.price, pending.draft.price)) {
            this.jumpEvent('log', 'confirmed', pending.draft, { reference, confirmedBy: source.name });
            this.jumps.clear(quote.pair);
            await done(pending.draft);
          } else if (!this.jumps.isJump(quote.price, reference)) {
            // The second source stands by the last price: the jump was the first source's error.
            this.jumpEvent('warn', 'rejected', pending.draft, { reference, contradictedBy: source.name, price: quote.price });
            this.jumps.clear(quote.pair);
            this.contradicted(pending.source, pending.draft, source.name);
            await done(draft);
          } else {
            held.set(quote.pair, { draft, source }); // both jump, and disagree: ask the next source
          }
          continue;
        }
        if (this.jumps.isJump(quote.price, reference)) {
          const { count, accepted } = this.jumps.hold(quote.pair, quote.price);
          if (accepted) {
            this.jumpEvent('warn', 'accepted', draft, { reference, answersInARow: count });
            await done(draft);
          } else {
            this.jumpEvent('log', 'held', draft, { reference, answersInARow: count });
            held.set(quote.pair, { draft, source });
          }
          continue;
        }
        this.jumps.clear(quote.pair);
        await done(draft);
      }
    }
    return { priced, unpriced: [...remaining] };
  }

  /**
   * PRICE_MODE=median: every source is asked at once; each pair gets the median of the fresh,
   * plausible prices, leaving out those further than MAX_DEVIATION_PCT from the median. A source that contributed to no pair because it was left out counts as failing.
   */
  private async pollMedian(pairs: readonly string[], signal: AbortSignal): Promise<Omit<PollReport, 'ran'>> {
    const wanted = new Set(pairs);
    const answers = await Promise.all(
      this.registry.sources.map(async (source) => {
        const { pushed, viaRest } = this.pushedQuotes(source, pairs);
        return { source, pushed, result: viaRest.length > 0 ? await this.ask(source, viaRest, signal) : null };
      }),
    );
    if (signal.aborted) return { priced: [], unpriced: [...pairs] };
    const retrievedAt = new Date().toISOString();
    const byPair = new Map<string, Candidate[]>();
    const problemsOf = new Map<SourceName, SourceError[]>();
    const usableOf = new Set<SourceName>();
    for (const { source, result, pushed } of answers) {
      const { usable, problems } = result ? this.screen(source, result, wanted) : { usable: [], problems: [] };
      problemsOf.set(source.name, problems);
      usable.push(...pushed);
      if (usable.length > 0) usableOf.add(source.name);
      for (const quote of usable) byPair.set(quote.pair, [...(byPair.get(quote.pair) ?? []), { source: source.name, quote }]);
    }

    const priced: PollReport['priced'] = [];
    const unpriced: string[] = [];
    const contributed = new Set<SourceName>();
    const outliers = new Map<SourceName, SourceError>();
    for (const pair of pairs) {
      const kept = this.agreeing(pair, byPair.get(pair) ?? [], outliers);
      if (kept.length === 0) {
        unpriced.push(pair);
        continue;
      }
      const draft: TickDraft = {
        pair,
        price: median(kept.map((c) => c.quote.price)),
        timestamp: retrievedAt,
        source: 'composite',
        sources: kept.map((c) => c.source),
      };
      // The composite is as old as its oldest part.
      const times = kept.map((c) => c.quote.sourceTimestamp).filter((t): t is string => t !== undefined).sort();
      if (times.length > 0) draft.sourceTimestamp = times[0];
      // Several agreeing venues are the confirmation a jump needs; one alone is held back as in failover.
      if (kept.length === 1 && this.jumps.isJump(draft.price, this.reference(pair))) {
        const { count, accepted } = this.jumps.hold(pair, draft.price);
        this.jumpEvent(accepted ? 'warn' : 'log', accepted ? 'accepted' : 'held', draft, { reference: this.reference(pair), answersInARow: count });
        if (!accepted) {
          unpriced.push(pair);
          continue;
        }
      } else {
        this.jumps.clear(pair);
      }
      for (const c of kept) contributed.add(c.source);
      priced.push({ pair, source: 'composite' });
      await this.emit(draft);
    }

    for (const { source, result } of answers) {
      if (!result) continue;
      const outlier = outliers.get(source.name);
      if (contributed.has(source.name)) this.settle(source, true, []);
      else if (outlier) this.settle(source, false, [outlier]);
      else this.settle(source, usableOf.has(source.name), problemsOf.get(source.name) ?? []);
    }
    return { priced, unpriced };
  }

  /**
   * The candidates of one pair that agree. Three or more: each is compared with the median of
   * all of them. Two that disagree: the one that stays within MAX_JUMP_PCT of the last price
   * wins; with no last price, or when both or neither do, nothing can be told and none is kept.
   */
  private agreeing(pair: string, candidates: Candidate[], outliers: Map<SourceName, SourceError>): Candidate[] {
    if (candidates.length < 2) return candidates;
    const leaveOut = (c: Candidate, against: number): void => {
      const error = new SourceError(c.source, 'implausible', `${pair}: ${c.quote.price} is ${pctApart(c.quote.price, against).toFixed(2)} % from the median (${against})`);
      outliers.set(c.source, error);
      this.metrics.pricesRejected.inc({ source: c.source, reason: 'deviation' });
      this.logger.warn({ msg: 'price left out of the composite: too far from the other sources', source: c.source, pair, price: c.quote.price, median: against, maxDeviationPct: this.config.maxDeviationPct });
    };
    if (candidates.length === 2) {
      const [a, b] = candidates;
      if (this.agree(a.quote.price, b.quote.price)) return candidates;
      const reference = this.reference(pair);
      const near = candidates.filter((c) => reference !== undefined && !this.jumps.isJump(c.quote.price, reference));
      if (near.length === 1) {
        const [far] = candidates.filter((c) => c !== near[0]);
        leaveOut(far, near[0].quote.price);
        return near;
      }
      this.logger.warn({ msg: 'two sources disagree and nothing tells which is right; no composite this poll', pair, prices: candidates.map((c) => ({ source: c.source, price: c.quote.price })) });
      return [];
    }
    // The median of all of them, not of "the others": with three venues the others of each are
    // two, and the median of two is their mean, which one bad venue drags off with it.
    const middle = median(candidates.map((c) => c.quote.price));
    const kept: Candidate[] = [];
    for (const c of candidates) {
      if (pctApart(c.quote.price, middle) > this.config.maxDeviationPct) leaveOut(c, middle);
      else kept.push(c);
    }
    return kept;
  }

  /** Asks one source for the pairs it supports and has not in flight, if its circuit lets it. */
  private async ask(source: PriceSource, pairs: readonly string[], signal: AbortSignal): Promise<SourceResult | null> {
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
      else this.recordFailure(source, circuit, err);
      return null;
    }
  }

  /**
   * The quotes of an answer that may be used (plausible and fresh by the upstream's own time),
   * and the problems of the others. Pairs the upstream does not list are no problem of it.
   */
  private screen(source: PriceSource, result: SourceResult, wanted: ReadonlySet<string>): { usable: Quote[]; problems: SourceError[] } {
    const usable: Quote[] = [];
    const problems: SourceError[] = [];
    const now = Date.now();
    for (const quote of result.quotes) {
      if (!wanted.has(quote.pair)) continue;
      const error = checkQuote(source.name, quote, now, this.config.staleAfterMs);
      if (!error) {
        usable.push(quote);
        continue;
      }
      problems.push(error);
      this.metrics.pricesRejected.inc({ source: source.name, reason: error.kind });
      this.logger.warn({ msg: 'source returned a price that cannot be used; dropped', source: source.name, pair: quote.pair, price: String(quote.price), kind: error.kind, error: error.message });
    }
    for (const { pair, error } of result.failed) {
      this.logger.debug({ msg: 'no price for a pair from this source', source: source.name, pair, kind: error.kind, error: error.message });
      if (error.kind !== 'unknown_pair') problems.push(error);
    }
    return { usable, problems };
  }

  /**
   * An answer with no usable price is a failure of the source (it backs off as if the request
   * had failed); one usable price, or only pairs the upstream does not list, is a success.
   */
  private settle(source: PriceSource, anyUsable: boolean, problems: readonly SourceError[]): void {
    const circuit = this.circuit(source);
    if (anyUsable || problems.length === 0) this.recordSuccess(source, circuit);
    else this.recordFailure(source, circuit, problems[0]);
  }

  /** A source whose jump another source contradicted counts as failing: it backs off. */
  private contradicted(source: PriceSource, draft: TickDraft, by: SourceName): void {
    const reference = this.reference(draft.pair);
    const against = reference === undefined ? '' : ` (last ${reference})`;
    this.recordFailure(source, this.circuit(source), new SourceError(source.name, 'implausible', `${draft.pair}: ${draft.price} contradicted by ${by}${against}`));
  }

  private agree(a: number, b: number): boolean {
    return pctApart(a, b) <= this.config.maxDeviationPct;
  }

  /** The price a new one is judged against: the pair's latest tick, or the one waiting to be one. */
  private reference(pair: string): number | undefined {
    return this.deferred.get(pair)?.draft.price ?? this.stream.latest(pair)?.price;
  }

  private jumpEvent(level: 'log' | 'warn', outcome: 'held' | 'confirmed' | 'accepted' | 'rejected', draft: TickDraft, fields: Record<string, unknown>): void {
    this.metrics.priceJumps.inc({ source: draft.source, outcome });
    const msg = {
      held: 'price jump held back until another source confirms it',
      confirmed: 'price jump confirmed by a second source; published',
      accepted: `price jump persisted for ${this.config.jumpConfirmations} answers in a row; published`,
      rejected: 'price jump contradicted by another source; dropped',
    }[outcome];
    this.logger[level]({ msg, outcome, pair: draft.pair, source: draft.source, price: draft.price, maxJumpPct: this.config.maxJumpPct, ...fields });
  }

  /**
   * Publishes at most one tick per pair per MIN_TICK_INTERVAL_MS: a price that comes sooner
   * waits for the rest of the interval, and a newer one replaces it while it waits.
   */
  private async emit(draft: TickDraft): Promise<void> {
    const waiting = this.deferred.get(draft.pair);
    if (waiting) {
      waiting.draft = draft;
      this.stream.confirm(draft.pair, Date.parse(draft.timestamp));
      return;
    }
    const last = this.lastTickAt.get(draft.pair);
    const waitMs = last === undefined ? 0 : last + this.config.minTickIntervalMs - Date.now();
    const latest = this.stream.latest(draft.pair);
    // Unchanged (price and bid/ask): nothing to bound, publish only confirms it.
    const unchanged = !changes(latest, draft);
    if (waitMs <= 0 || unchanged) {
      // The interval starts now, not when the publish settles (with Redis a later turn's quote would find it open).
      if (!unchanged && this.config.minTickIntervalMs > 0) this.lastTickAt.set(draft.pair, Date.now());
      await this.publish(draft);
      return;
    }
    this.stream.confirm(draft.pair, Date.parse(draft.timestamp));
    const entry = {
      draft,
      timer: setTimeout(() => {
        this.deferred.delete(draft.pair);
        // As on the immediate path: the next interval starts now, not when the publish settles.
        this.lastTickAt.set(draft.pair, Date.now());
        void this.publish(entry.draft);
      }, waitMs),
    };
    this.deferred.set(draft.pair, entry);
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

  private async publish(draft: TickDraft): Promise<void> {
    try {
      const tick = await this.stream.publish(draft);
      if (tick && this.config.minTickIntervalMs > 0) this.lastTickAt.set(draft.pair, Date.now());
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
