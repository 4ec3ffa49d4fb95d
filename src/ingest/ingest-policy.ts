import type { AppConfig } from '../config/app-config';
import type { MetricsService } from '../metrics/metrics.service';
import { TICKER_FIELDS, type SourceName, type TickSource } from '../shared/wire';
import type { PriceSource, Quote, SourceError, SourceResult } from '../sources/price-source';
import type { SourceRegistry } from '../sources/source-registry';
import type { TickDraft } from '../stream/tick-log';
import { checkQuote, JumpGuard, pctApart } from './price-checks';
import type { PublishPort } from './publish-port';
import type { SourceCaller } from './source-caller';
import { TickThrottle } from './tick-throttle';

/** What one poll priced. */
export type PollOutcome = {
  /** The pairs that got a price, and from which source (`composite` in PRICE_MODE=median). */
  priced: { pair: string; source: TickSource }[];
  /** The pairs no source could price in this poll. */
  unpriced: string[];
};

/** A quote as a tick to publish, with the ticker fields the upstream gave. */
export function draftOf(quote: Quote, source: SourceName, retrievedAt: string): TickDraft {
  const draft: TickDraft = { pair: quote.pair, price: quote.price, timestamp: retrievedAt, source };
  if (quote.sourceTimestamp !== undefined) draft.sourceTimestamp = quote.sourceTimestamp;
  for (const name of TICKER_FIELDS) {
    const value = quote[name];
    if (value !== undefined) draft[name] = value;
  }
  return draft;
}

/**
 * What turns the sources' answers into ticks (PRICE_MODE: FailoverPolicy or MedianPolicy; the
 * Nest token the scheduler injects). A poll asks the sources through the SourceCaller; a quote
 * a push feed hands on comes straight here (the policy starts the feeds with itself as their
 * consumer). Before anything is published: the price is in PRICE_RANGE, fresh by the
 * upstream's own time, and within MAX_JUMP_PCT of the last one; a jump waits for a second
 * source (or for JUMP_CONFIRMATIONS answers in a row). The throttle it extends then publishes
 * at most one tick per pair per MIN_TICK_INTERVAL_MS to the port.
 */
export abstract class IngestPolicy extends TickThrottle {
  protected readonly jumps: JumpGuard;
  /** The feeds run (this process polls): only then is a pushed quote taken. */
  private feedsRunning = false;

  constructor(
    protected readonly registry: SourceRegistry,
    protected readonly caller: SourceCaller,
    port: PublishPort,
    config: AppConfig,
    protected readonly metrics: MetricsService,
  ) {
    super(port, config);
    this.jumps = new JumpGuard(config.maxJumpPct, config.jumpConfirmations);
  }

  /** One poll of the given pairs; publishes what it prices. */
  abstract poll(pairs: readonly string[], signal: AbortSignal): Promise<PollOutcome>;

  /** A quote one of the push feeds handed on (the latest of its pair in that event-loop turn). */
  protected abstract pushed(source: SourceName, quote: Quote): void;

  /** Connects the push feeds, each handing its quotes to this policy. */
  startFeeds(): void {
    this.feedsRunning = true;
    for (const [name, feed] of this.registry.feeds) {
      feed.start(this.config.pairs, (quote) => {
        if (this.feedsRunning) this.pushed(name, quote);
      });
    }
  }

  stopFeeds(): void {
    this.feedsRunning = false;
    for (const feed of this.registry.feeds.values()) feed.stop();
  }

  /**
   * Splits pairs into those the source's push feed serves now (plausible, fresh by the
   * exchange's time) and those to ask its REST endpoint for, in the same poll.
   */
  protected pushedQuotes(source: PriceSource, pairs: Iterable<string>): { pushed: Quote[]; viaRest: string[] } {
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

  /**
   * The quotes of an answer that may be used (plausible and fresh by the upstream's own time),
   * and the problems of the others. Pairs the upstream does not list are no problem of it.
   */
  protected screen(source: PriceSource, result: SourceResult, wanted: ReadonlySet<string>): { usable: Quote[]; problems: SourceError[] } {
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

  protected agree(a: number, b: number): boolean {
    return pctApart(a, b) <= this.config.maxDeviationPct;
  }

  protected jumpEvent(level: 'log' | 'warn', outcome: 'held' | 'confirmed' | 'accepted' | 'rejected', draft: TickDraft, fields: Record<string, unknown>): void {
    this.metrics.priceJumps.inc({ source: draft.source, outcome });
    const msg = {
      held: 'price jump held back until another source confirms it',
      confirmed: 'price jump confirmed by a second source; published',
      accepted: `price jump persisted for ${this.config.jumpConfirmations} answers in a row; published`,
      rejected: 'price jump contradicted by another source; dropped',
    }[outcome];
    this.logger[level]({ msg, outcome, pair: draft.pair, source: draft.source, price: draft.price, maxJumpPct: this.config.maxJumpPct, ...fields });
  }
}
