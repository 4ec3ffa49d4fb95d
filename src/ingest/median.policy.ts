import type { SourceName } from '../shared/wire';
import { SourceError, type Quote } from '../sources/price-source';
import type { TickDraft } from '../stream/tick-log';
import { IngestPolicy, type PollOutcome } from './ingest-policy';
import { median, pctApart } from './price-checks';

type Candidate = { source: SourceName; quote: Quote };

/**
 * PRICE_MODE=median: every source is asked at once; each pair gets the median of the fresh,
 * plausible prices, leaving out those further than MAX_DEVIATION_PCT from the median. A source
 * that contributed to no pair because it was left out counts as failing.
 */
export class MedianPolicy extends IngestPolicy {
  async poll(pairs: readonly string[], signal: AbortSignal): Promise<PollOutcome> {
    const wanted = new Set(pairs);
    const answers = await Promise.all(
      this.registry.sources.map(async (source) => {
        const { pushed, viaRest } = this.pushedQuotes(source, pairs);
        return { source, pushed, result: viaRest.length > 0 ? await this.caller.ask(source, viaRest, signal) : null };
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

    const priced: PollOutcome['priced'] = [];
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
      if (contributed.has(source.name)) this.caller.settle(source, true, []);
      else if (outlier) this.caller.settle(source, false, [outlier]);
      else this.caller.settle(source, usableOf.has(source.name), problemsOf.get(source.name) ?? []);
    }
    return { priced, unpriced };
  }

  /** In median mode the composite is made at each poll: a pushed quote waits for it (`current()`). */
  protected pushed(): void {}

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
}
