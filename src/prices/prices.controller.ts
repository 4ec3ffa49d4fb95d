import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiError } from '../common/api-error';
import { checkPair } from '../common/pair';
import { parseLimit, parsePairList, queryString } from '../common/query';
import { parseSince } from '../common/resume';
import { AppConfig } from '../config/app-config';
import type { HistoryResponse, PairError, PairsResponse, PricesResponse } from '../shared/wire';
import { PricesService } from './prices.service';

@Controller('api')
export class PricesController {
  constructor(
    private readonly prices: PricesService,
    private readonly config: AppConfig,
  ) {}

  @Get('pairs')
  pairs(): PairsResponse {
    return { pairs: this.prices.pairInfos() };
  }

  @Get('prices')
  list(@Query('pairs') rawPairs: unknown, @Res({ passthrough: true }) res: Response): PricesResponse {
    const { pairs, rejected } = parsePairList(queryString(rawPairs, 'pairs'), this.config.pairSet, this.config.maxPairsPerRequest);
    if (pairs.length === 0) {
      throw rejected[0]?.error ?? new ApiError(400, 'INVALID_PAIR', 'no pair given');
    }
    const errors: PairError[] = rejected.map((r) => ({ pair: r.input, code: r.error.code, message: r.error.message }));
    const { prices, missing } = this.prices.latestOf(pairs);
    for (const pair of missing) errors.push({ pair, code: 'NO_PRICE_YET', message: `no price for ${pair} yet` });
    if (errors.length > 0) {
      res.status(206);
      return { prices, errors };
    }
    return { prices };
  }

  @Get('prices/:pair')
  one(@Param('pair') rawPair: string) {
    return this.prices.latestOrThrow(this.pathPair(rawPair));
  }

  @Get('prices/:pair/history')
  async history(@Param('pair') rawPair: string, @Query('since') since: unknown, @Query('limit') limit: unknown): Promise<HistoryResponse> {
    const pair = this.pathPair(rawPair);
    const sinceRaw = queryString(since, 'since');
    const sinceMs = sinceRaw === undefined || sinceRaw === '' ? undefined : parseSince(sinceRaw, Date.now());
    const page = await this.prices.history(pair, sinceMs, parseLimit(queryString(limit, 'limit'), 100, 1000));
    return { pair, count: page.ticks.length, complete: page.complete, updates: page.ticks };
  }

  private pathPair(raw: string): string {
    const check = checkPair(raw, this.config.pairSet, 404);
    if (!check.ok) throw check.error;
    return check.pair;
  }
}
