import { Injectable } from '@nestjs/common';
import { ApiError } from '../http/api-error';
import { AppConfig } from '../config/app-config';
import type { PairInfo, Tick } from '../shared/wire';
import { PriceStreamService } from '../stream/price-stream.service';
import type { HistoryPage } from '../stream/tick-log';
import { legacyCurrent } from './legacy-current';
import { LatestBodyCache, type CachedBody } from './latest-body';

/** Read-side queries shared by the REST routes (ours and the legacy ones). */
@Injectable()
export class PricesService {
  private readonly tickBodies = new LatestBodyCache('tick');
  private readonly legacyCurrentBodies = new LatestBodyCache('current', legacyCurrent);

  constructor(
    private readonly stream: PriceStreamService,
    private readonly config: AppConfig,
  ) {}

  pairInfos(): PairInfo[] {
    const now = Date.now();
    return this.config.pairs.map((pair) => ({ pair, latest: this.stream.latest(pair) ?? null, fresh: this.stream.isFresh(pair, now) }));
  }

  latestOf(pairs: readonly string[]): { prices: Tick[]; missing: string[] } {
    const prices: Tick[] = [];
    const missing: string[] = [];
    for (const pair of pairs) {
      const tick = this.stream.latest(pair);
      if (tick) prices.push(tick);
      else missing.push(pair);
    }
    return { prices, missing };
  }

  /** The pair's latest tick, if it has one. */
  latest(pair: string): Tick | undefined {
    return this.stream.latest(pair);
  }

  hasLatest(pair: string): boolean {
    return this.stream.latest(pair) !== undefined;
  }

  latestOrThrow(pair: string): Tick {
    const tick = this.stream.latest(pair);
    if (!tick) throw new ApiError(404, 'NO_PRICE_YET', `no price for ${pair} yet`);
    return tick;
  }

  /** `GET /api/prices/:pair`: the latest tick's JSON and ETag, built once per tick. */
  latestBody(pair: string): CachedBody {
    return this.tickBodies.get(this.latestOrThrow(pair));
  }

  /** `GET /api/price/current` (the legacy shape), likewise. */
  legacyCurrentBody(pair: string): CachedBody {
    return this.legacyCurrentBodies.get(this.latestOrThrow(pair));
  }

  history(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage> {
    return this.stream.history(pair, sinceMs, limit);
  }
}
