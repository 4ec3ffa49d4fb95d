import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiErrors, PairErrorSchema, TickSchema } from '../common/openapi';
import { ApiError } from '../common/api-error';
import { checkPair } from '../common/pair';
import { parseLimit, queryString } from '../common/query';
import { parseSince } from '../common/resume';
import { AppConfig } from '../config/app-config';
import { LEGACY_PAIR, type Tick } from '../shared/wire';
import { sendLatest } from './latest-body';
import { PricesService } from './prices.service';

/**
 * The routes of the projects this service replaces, kept so that their clients work unchanged:
 * a Bitcoin price tracker (`/api/price/*`) and a Kraken last-traded-price service (`/api/v1/ltp`).
 */
@ApiTags('legacy')
@Controller('api')
export class LegacyController {
  constructor(
    private readonly prices: PricesService,
    private readonly config: AppConfig,
  ) {}

  @Get('price/current')
  @ApiOkResponse({
    description: 'The latest BTC-USD tick with the fields of the replaced Bitcoin tracker',
    schema: { ...TickSchema, properties: { ...TickSchema.properties, symbol: { type: 'string', example: 'BTC' }, name: { type: 'string', example: 'Bitcoin' } } },
  })
  @ApiErrors([404, 'NO_PRICE_YET', 'UNSUPPORTED_PAIR'])
  current(@Res({ passthrough: true }) res: Response): string {
    return sendLatest(res, this.prices.legacyCurrentBody(this.legacyPair()));
  }

  @Get('price/history')
  @ApiQuery({ name: 'since', required: false })
  @ApiQuery({ name: 'limit', required: false })
  @ApiOkResponse({ description: 'BTC-USD history, oldest first', schema: { type: 'object', properties: { count: { type: 'integer' }, updates: { type: 'array', items: TickSchema } } } })
  @ApiErrors([400, 'INVALID_LIMIT', 'INVALID_RESUME_POINT', 'RESUME_POINT_IN_FUTURE'], [404, 'UNSUPPORTED_PAIR'])
  async history(@Query('since') since: unknown, @Query('limit') limit: unknown): Promise<{ count: number; updates: Tick[] }> {
    const sinceRaw = queryString(since, 'since');
    const sinceMs = sinceRaw === undefined || sinceRaw === '' ? undefined : parseSince(sinceRaw, Date.now());
    const page = await this.prices.history(this.legacyPair(), sinceMs, parseLimit(queryString(limit, 'limit'), 100, 1000));
    return { count: page.ticks.length, updates: page.ticks };
  }

  /** `?pair=BTC/USD,ETH/USD` → `{ltp:[{pair:"BTC/USD", amount}]}`; 206 with `errors` when partial. */
  @Get('v1/ltp')
  @ApiQuery({ name: 'pair', required: false, example: 'BTC/USD,ETH/USD' })
  @ApiOkResponse({
    description: 'Last traded prices, in the format of the replaced Kraken LTP service',
    schema: { type: 'object', properties: { ltp: { type: 'array', items: { type: 'object', properties: { pair: { type: 'string', example: 'BTC/USD' }, amount: { type: 'number' } } } } } },
  })
  @ApiResponse({ status: 206, description: 'Some pairs failed', schema: { type: 'object', properties: { ltp: { type: 'array' }, errors: { type: 'array', items: PairErrorSchema } } } })
  @ApiErrors([400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS'])
  ltp(@Query('pair') rawPair: unknown, @Res({ passthrough: true }) res: Response) {
    const raw = queryString(rawPair, 'pair');
    const items = raw === undefined || raw.trim() === '' ? this.config.pairs.map((p) => p.replace('-', '/')) : raw.split(',').map((s) => s.trim()).filter(Boolean);
    if (items.length > this.config.maxPairsPerRequest) {
      throw new ApiError(400, 'TOO_MANY_PAIRS', `at most ${this.config.maxPairsPerRequest} pairs per request, got ${items.length}`);
    }
    const ltp: { pair: string; amount: number }[] = [];
    const errors: { pair: string; code: string; message: string }[] = [];
    for (const item of items) {
      const check = checkPair(item, this.config.pairSet);
      if (!check.ok) {
        errors.push({ pair: item, code: check.error.code, message: check.error.message });
        continue;
      }
      const tick = this.prices.latestOf([check.pair]).prices[0];
      if (tick) ltp.push({ pair: check.pair.replace('-', '/'), amount: tick.price });
      else errors.push({ pair: item, code: 'NO_PRICE_YET', message: `no price for ${check.pair} yet` });
    }
    if (ltp.length === 0 && errors.every((e) => e.code !== 'NO_PRICE_YET')) {
      throw new ApiError(400, errors[0]?.code === 'UNSUPPORTED_PAIR' ? 'UNSUPPORTED_PAIR' : 'INVALID_PAIR', errors[0]?.message ?? 'no pair given');
    }
    if (errors.length > 0) {
      res.status(206);
      return { ltp, errors };
    }
    return { ltp };
  }

  private legacyPair(): string {
    if (!this.config.pairSet.has(LEGACY_PAIR)) throw new ApiError(404, 'UNSUPPORTED_PAIR', `${LEGACY_PAIR} is not served here`);
    return LEGACY_PAIR;
  }
}
