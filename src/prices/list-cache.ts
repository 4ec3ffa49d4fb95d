import { withEtag, type FastAnswer } from '../http/fast-rest';
import type { Tick } from '../shared/wire';
import type { ListAnswer } from './price-lists';
import type { PricesService } from './prices.service';

/** What a list answer reads: the latest ticks of its pairs (PricesService.latestOf). */
export type LatestReader = Pick<PricesService, 'latestOf'>;

type Entry = { pairs: readonly string[]; ticks: readonly (Tick | undefined)[]; answer: FastAnswer };

/** Queries remembered per route; past this the oldest is forgotten (queries are the client's to vary). */
export const LIST_CACHE_SIZE = 1000;

/**
 * A list route's answers (`/api/prices?pairs=`, `/api/v1/ltp`), by query string, each built once
 * per change of the ticks it was built from: the JSON, its length and Express' weak ETag. A
 * build reads the latest ticks through a reader that notes which pairs it read and what they
 * were; the answer is served again while every one of those pairs still has that same tick (a
 * tick object is never mutated; a new tick is a new object), so a tick of another pair costs
 * nothing. An answer depends only on the query, the configuration and those ticks; an error
 * (thrown, the query is malformed) is not kept.
 */
export class ListAnswerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly latest: (pair: string) => Tick | undefined,
    private readonly size = LIST_CACHE_SIZE,
  ) {}

  /** The answer for `query`: the one built before if its ticks are still the latest, else `build`'s. */
  answer(query: string, build: (reader: LatestReader) => ListAnswer<unknown>): FastAnswer {
    const entry = this.entries.get(query);
    if (entry !== undefined && this.current(entry)) return entry.answer;
    const pairs: string[] = [];
    const ticks: (Tick | undefined)[] = [];
    const reader: LatestReader = {
      latestOf: (wanted) => {
        const prices: Tick[] = [];
        const missing: string[] = [];
        for (const pair of wanted) {
          const tick = this.latest(pair);
          pairs.push(pair);
          ticks.push(tick);
          if (tick) prices.push(tick);
          else missing.push(pair);
        }
        return { prices, missing };
      },
    };
    const built = build(reader);
    const answer = withEtag({ status: built.status, json: JSON.stringify(built.body) });
    if (entry === undefined && this.entries.size >= this.size) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(query, { pairs, ticks, answer });
    return answer;
  }

  /** Queries held (for tests). */
  get held(): number {
    return this.entries.size;
  }

  private current(entry: Entry): boolean {
    for (let i = 0; i < entry.pairs.length; i++) if (this.latest(entry.pairs[i]) !== entry.ticks[i]) return false;
    return true;
  }
}
