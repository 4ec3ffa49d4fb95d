import type { SourceName } from '../shared/wire';
import { SourceError, type PriceSource, type Quote } from '../sources/price-source';
import type { TickDraft } from '../stream/tick-log';
import { draftOf, IngestPolicy, type PollOutcome } from './ingest-policy';
import { checkQuote } from './price-checks';

/**
 * PRICE_MODE=failover: each poll tries the pairs still unpriced on each source in PRICE_SOURCES
 * order. Failures of a whole request (timeout, 5xx, 429, bad JSON, network, too large) open the
 * source's circuit, and so does an answer with no usable price (NaN, zero, out of range, stale
 * by its own time, another pair's). A pair the upstream does not list falls to the next source
 * without counting. Between polls, the push feed of the source that priced a pair publishes it.
 */
export class FailoverPolicy extends IngestPolicy {
  /** The source that priced each pair in the last poll: only its push feed publishes between polls. */
  private readonly servedBy = new Map<string, SourceName>();

  /**
   * Each source in turn prices the pairs still unpriced. A jump is held back and stays
   * unpriced, so that the next source is asked for it in the same poll.
   */
  async poll(pairs: readonly string[], signal: AbortSignal): Promise<PollOutcome> {
    const remaining = new Set(pairs);
    const priced: PollOutcome['priced'] = [];
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
      const result = viaRest.length > 0 ? await this.caller.ask(source, viaRest, signal) : null;
      if (!result && pushed.length === 0) continue;
      const retrievedAt = new Date().toISOString();
      const usable = [...pushed];
      if (result) {
        const screened = this.screen(source, result, remaining);
        this.caller.settle(source, screened.usable.length > 0, screened.problems);
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
   * A pushed trade is published at once when its source is the one serving the pair (or none
   * is yet), it is plausible and fresh, and it is no jump. A jump waits for the next poll, which
   * asks a second source.
   */
  protected pushed(source: SourceName, quote: Quote): void {
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

  /** A source whose jump another source contradicted counts as failing: it backs off. */
  private contradicted(source: PriceSource, draft: TickDraft, by: SourceName): void {
    const reference = this.reference(draft.pair);
    const against = reference === undefined ? '' : ` (last ${reference})`;
    this.caller.recordFailure(source, new SourceError(source.name, 'implausible', `${draft.pair}: ${draft.price} contradicted by ${by}${against}`));
  }
}
