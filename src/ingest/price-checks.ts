import { CLOCK_SKEW_MS } from '../domain/resume';
import type { SourceName } from '../shared/wire';
import { SourceError, type Quote } from '../sources/price-source';

/**
 * No pair any of the upstreams lists trades outside this range (BTC in the weakest listed fiat
 * is ~1e10, the smallest meme coins in BTC ~1e-10). A price outside it is a garbled answer
 * (`1e308`, `1e-300`), whatever the reference says; inside it, the jump and deviation checks
 * judge it against the last price and the other sources.
 */
export const PRICE_RANGE = { min: 1e-12, max: 1e12 } as const;

/** How far `price` is from `reference`, in percent of the reference. */
export function pctApart(price: number, reference: number): number {
  return (Math.abs(price - reference) / reference) * 100;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Why a quote must not be published on its own merits, or null: a price that is not finite or
 * outside PRICE_RANGE, an upstream time older than `staleAfterMs` (the upstream itself says the
 * price is old, so it is no fresh price whatever time we fetched it), or an upstream time more
 * than CLOCK_SKEW_MS ahead of ours (no real trade; a broken or hostile upstream). Polled and
 * pushed quotes alike.
 */
export function checkQuote(source: SourceName, quote: Quote, nowMs: number, staleAfterMs: number): SourceError | null {
  const { pair, price } = quote;
  if (!Number.isFinite(price) || price < PRICE_RANGE.min || price > PRICE_RANGE.max) {
    return new SourceError(source, 'implausible', `${pair}: ${String(price)} is outside ${PRICE_RANGE.min}..${PRICE_RANGE.max}`);
  }
  if (quote.sourceTimestamp !== undefined) {
    const ageMs = nowMs - Date.parse(quote.sourceTimestamp);
    if (!(ageMs <= staleAfterMs)) return new SourceError(source, 'stale', `${pair}: the upstream's price is from ${quote.sourceTimestamp}, ${Math.round(ageMs / 1000)} s ago`);
    if (ageMs < -CLOCK_SKEW_MS) return new SourceError(source, 'implausible', `${pair}: the upstream's price is from ${quote.sourceTimestamp}, ${Math.round(-ageMs / 1000)} s in the future`);
  }
  return null;
}

/**
 * Held-back jumps per pair: a price more than MAX_JUMP_PCT from the last published one is not
 * published until a second source confirms it, or until it has persisted for
 * JUMP_CONFIRMATIONS answers in a row (a real crash, with no other source to ask).
 */
export class JumpGuard {
  private readonly streaks = new Map<string, { price: number; count: number }>();

  constructor(
    private readonly maxJumpPct: number,
    private readonly confirmations: number,
  ) {}

  isJump(price: number, reference: number | undefined): boolean {
    return reference !== undefined && pctApart(price, reference) > this.maxJumpPct;
  }

  /**
   * Counts one more answer at a jumped level (one that stays within MAX_JUMP_PCT of the last
   * held one continues the streak; another starts a new one). `accepted` once the streak is
   * JUMP_CONFIRMATIONS long; the streak then ends.
   */
  hold(pair: string, price: number): { count: number; accepted: boolean } {
    const streak = this.streaks.get(pair);
    const count = streak && pctApart(price, streak.price) <= this.maxJumpPct ? streak.count + 1 : 1;
    if (count >= this.confirmations) {
      this.streaks.delete(pair);
      return { count, accepted: true };
    }
    this.streaks.set(pair, { price, count });
    return { count, accepted: false };
  }

  /** A price within bounds was published (or the jump was settled): the streak ends. */
  clear(pair: string): void {
    this.streaks.delete(pair);
  }
}
