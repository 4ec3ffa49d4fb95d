import { Injectable } from '@nestjs/common';
import { parse } from 'node:querystring';
import { checkPair } from '../domain/pair';
import { EdgeRouter } from '../http/edge-router';
import type { FastAnswer, FastTarget } from '../http/fast-rest';
import { queryString } from '../http/query';
import { AppConfig } from '../config/app-config';
import { LEGACY_PAIR } from '../shared/wire';
import { ListAnswerCache } from './list-cache';
import { ltpList, pricesList } from './price-lists';
import { PricesService } from './prices.service';

/**
 * The answers dashboards and bots poll, served by the edge router ahead of Express (its `rest`
 * rows in edge-routes.ts name these handlers): `GET /api/prices/:pair` and `GET /api/price/current`
 * with a price to give (a body built once per tick, with its ETag), and the lists
 * `GET /api/prices?pairs=` and `GET /api/v1/ltp?pair=` (pricesList and ltpList, which the
 * controllers call too; answers kept per query until a tick they show changes: list-cache.ts). The router adds what Express and Nest would (fast-rest.ts). The
 * controllers still declare the routes for OpenAPI and answer what is declined here: HEAD, a
 * latest price with a query, an escaped or invalid pair or no price yet, and every target
 * Express' URL parser would read otherwise (`plainTarget`).
 */
@Injectable()
export class PricesEdge {
  constructor(
    router: EdgeRouter,
    private readonly prices: PricesService,
    private readonly config: AppConfig,
  ) {
    const latest = (pair: string) => prices.latest(pair);
    const priceLists = new ListAnswerCache(latest);
    const ltpLists = new ListAnswerCache(latest);
    router.serve('rest', 'latest', (target) => this.latest(target));
    router.serve('rest', 'legacyCurrent', (target) => this.legacyCurrent(target));
    router.serve('rest', 'prices', ({ query = '' }) => priceLists.answer(query, (reader) => pricesList(queryString(parse(query).pairs, 'pairs'), { config, prices: reader })));
    router.serve('rest', 'ltp', ({ query = '' }) => ltpLists.answer(query, (reader) => ltpList(queryString(parse(query).pair, 'pair'), { config, prices: reader })));
  }

  /** `/api/prices/:pair` (one path segment) with a price; anything else is the controller's. */
  latest(target: FastTarget): FastAnswer | undefined {
    if (target.query !== undefined || target.path.includes('%')) return undefined;
    const check = checkPair(target.path.slice(target.path.lastIndexOf('/') + 1), this.config.pairSet, 404);
    if (!check.ok || !this.prices.hasLatest(check.pair)) return undefined;
    return this.prices.latestBody(check.pair);
  }

  legacyCurrent(target: FastTarget): FastAnswer | undefined {
    if (target.query !== undefined || !this.config.pairSet.has(LEGACY_PAIR) || !this.prices.hasLatest(LEGACY_PAIR)) return undefined;
    return this.prices.legacyCurrentBody(LEGACY_PAIR);
  }
}
