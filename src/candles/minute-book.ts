import { addTick, minuteFromTick, minuteOf, type Minute } from './minute';

/** The index of the first minute starting at or after `ms` in a sorted array. */
function lowerBound(minutes: readonly Minute[], ms: number): number {
  let lo = 0;
  let hi = minutes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (minutes[mid].start < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The one-minute candles of every pair, in memory, sorted by start, at most `retentionMs` old.
 * `generation(pair)` changes whenever a minute other than the newest one changes (a backfill, a
 * late tick, a reload, the retention cut): what was read of closed minutes before is stale then.
 */
export class MinuteBook {
  private readonly pairs = new Map<string, Minute[]>();
  private readonly generations = new Map<string, number>();

  constructor(private readonly retentionMs: number) {}

  generation(pair: string): number {
    return this.generations.get(pair) ?? 0;
  }

  /** Adds a tick; returns its minute (to be written through when this instance writes). */
  addTick(pair: string, price: number, ms: number, nowMs = Date.now()): Minute {
    const minutes = this.minutesOf(pair);
    const start = minuteOf(ms);
    const last = minutes.at(-1);
    if (last && last.start === start) {
      // A tick stamped just before the minute turned, arriving after: a closed minute changes.
      if (start < minuteOf(nowMs)) this.bump(pair);
      addTick(last, price, ms);
      return last;
    }
    if (!last || last.start < start) {
      // The first tick of a minute that has already ended: a closed minute appears.
      if (start < minuteOf(nowMs)) this.bump(pair);
      const m = minuteFromTick(price, ms);
      minutes.push(m);
      this.cut(pair, minutes, start);
      return m;
    }
    // A tick of an earlier minute (a late push-feed trade): a closed minute changes.
    this.bump(pair);
    const i = lowerBound(minutes, start);
    if (minutes[i]?.start === start) {
      addTick(minutes[i], price, ms);
      return minutes[i];
    }
    const m = minuteFromTick(price, ms);
    minutes.splice(i, 0, m);
    return m;
  }

  /** Puts minutes in where there are none (a backfill never overwrites ours); returns those put in. */
  fill(pair: string, incoming: readonly Minute[], nowMs = Date.now()): Minute[] {
    const minutes = this.minutesOf(pair);
    const have = new Set(minutes.map((m) => m.start));
    const floor = nowMs - this.retentionMs;
    const added = incoming.filter((m) => m.start >= floor && !have.has(m.start) && (have.add(m.start), true));
    if (added.length === 0) return [];
    const merged = [...minutes, ...added].sort((a, b) => a.start - b.start);
    this.pairs.set(pair, merged);
    this.bump(pair);
    return added;
  }

  /** Replaces a pair's minutes (loaded from the shared store). */
  replace(pair: string, minutes: Minute[]): void {
    this.pairs.set(pair, [...minutes].sort((a, b) => a.start - b.start));
    this.bump(pair);
  }

  /** The minutes starting in [fromMs, toMs), oldest first. */
  range(pair: string, fromMs: number, toMs: number): Minute[] {
    const minutes = this.pairs.get(pair);
    if (!minutes) return [];
    return minutes.slice(lowerBound(minutes, fromMs), lowerBound(minutes, toMs));
  }

  newest(pair: string): Minute | undefined {
    return this.pairs.get(pair)?.at(-1);
  }

  size(pair: string): number {
    return this.pairs.get(pair)?.length ?? 0;
  }

  /** Drops every minute older than the retention, seen from `nowMs`. */
  prune(nowMs = Date.now()): void {
    for (const [pair, minutes] of this.pairs) this.cut(pair, minutes, nowMs);
  }

  private cut(pair: string, minutes: Minute[], nowMs: number): void {
    const n = lowerBound(minutes, nowMs - this.retentionMs);
    if (n === 0) return;
    minutes.splice(0, n);
    this.bump(pair);
  }

  private minutesOf(pair: string): Minute[] {
    let minutes = this.pairs.get(pair);
    if (!minutes) {
      minutes = [];
      this.pairs.set(pair, minutes);
    }
    return minutes;
  }

  private bump(pair: string): void {
    this.generations.set(pair, this.generation(pair) + 1);
  }
}
