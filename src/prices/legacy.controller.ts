import { Controller, Get, HttpCode, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '../http/api-docs';
import { AdminTokenGuard } from '../admin/admin-token.guard';
import { PricePollerService } from '../ingest/price-poller.service';
import type { Response } from 'express';
import { ADMIN_AUTH, ApiErrors, ApiTokenErrors, schemaRef } from '../http/openapi';
import { ApiError } from '../http/api-error';
import { parseLimit, parsePairList, queryString } from '../http/query';
import { parseSince } from '../domain/resume';
import { AppConfig } from '../config/app-config';
import { LEGACY_PAIR, type Tick } from '../shared/wire';
import { sendLatest } from './latest-body';
import { ltpList, slashed, type LtpItem, type LtpResponse } from './price-lists';
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
    private readonly poller: PricePollerService,
  ) {}

  @Get('price/current')
  @ApiOperation({ summary: 'Latest BTC-USD tick (Bitcoin tracker format)' })
  @ApiOkResponse({
    description: 'The latest BTC-USD tick with the fields of the replaced Bitcoin tracker',
    schema: schemaRef('LegacyTick'),
  })
  @ApiTokenErrors('rest', [404, 'NO_PRICE_YET', 'UNSUPPORTED_PAIR'])
  current(@Res({ passthrough: true }) res: Response): string {
    return sendLatest(res, this.prices.legacyCurrentBody(this.legacyPair()));
  }

  @Get('price/history')
  @ApiOperation({ summary: 'BTC-USD history (Bitcoin tracker format)' })
  @ApiQuery({ name: 'since', required: false })
  @ApiQuery({ name: 'limit', required: false })
  @ApiOkResponse({ description: 'BTC-USD history, oldest first', schema: { type: 'object', properties: { count: { type: 'integer' }, updates: { type: 'array', items: schemaRef('Tick') } } } })
  @ApiTokenErrors('rest', [400, 'INVALID_LIMIT', 'INVALID_RESUME_POINT', 'RESUME_POINT_IN_FUTURE'], [404, 'UNSUPPORTED_PAIR'])
  async history(@Query('since') since: unknown, @Query('limit') limit: unknown): Promise<{ count: number; updates: Tick[] }> {
    const sinceRaw = queryString(since, 'since');
    const sinceMs = sinceRaw === undefined || sinceRaw === '' ? undefined : parseSince(sinceRaw, Date.now());
    const page = await this.prices.history(this.legacyPair(), sinceMs, parseLimit(queryString(limit, 'limit'), 100, 1000));
    return { count: page.ticks.length, updates: page.ticks };
  }

  /** `?pair=BTC/USD,ETH/USD` → `{ltp:[{pair:"BTC/USD", amount}]}`; 206 with `errors` when partial. */
  @Get('v1/ltp')
  @ApiOperation({ summary: 'Last traded prices (Kraken LTP service format)' })
  @ApiQuery({ name: 'pair', required: false, example: 'BTC/USD,ETH/USD' })
  @ApiOkResponse({
    description: 'Last traded prices, in the format of the replaced Kraken LTP service',
    schema: { type: 'object', properties: { ltp: { type: 'array', items: schemaRef('LtpItem') } } },
  })
  @ApiResponse({ status: 206, description: 'Some pairs failed', schema: { type: 'object', properties: { ltp: { type: 'array', items: schemaRef('LtpItem') }, errors: { type: 'array', items: schemaRef('PairError') } } } })
  @ApiTokenErrors('rest', [400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS'])
  ltp(@Query('pair') rawPair: unknown, @Res({ passthrough: true }) res: Response): LtpResponse {
    // The edge router answers the same through ltpList (its `ltp` row) ahead of Express.
    const { status, body } = ltpList(queryString(rawPair, 'pair'), { config: this.config, prices: this.prices });
    res.status(status);
    return body;
  }

  /** The LTP service's cache: the latest price of every configured pair that has one. */
  @Get('v1/ltp/cached')
  @ApiOperation({ summary: 'Every cached last traded price (LTP service format)' })
  @ApiTokenErrors('rest')
  @ApiOkResponse({ description: 'Every cached last traded price', schema: { type: 'object', properties: { ltp: { type: 'array', items: schemaRef('LtpItem') } } } })
  cached(): { ltp: LtpItem[] } {
    return { ltp: this.prices.latestOf([...this.config.pairs]).prices.map((tick) => ({ pair: slashed(tick.pair), amount: tick.price })) };
  }

  /**
   * The LTP service's refresh, `?pairs=BTC/USD,ETH/USD` (all when absent). Unlike the original it
   * is an admin route, as our own POST /api/admin/refresh: 401 without the ADMIN_TOKEN bearer
   * token, 404 when no ADMIN_TOKEN is configured (an open refresh would let anyone spend the
   * upstreams' rate limits).
   */
  @Post('v1/ltp/refresh')
  @ApiOperation({ summary: 'Poll the sources now (LTP service format; admin token)' })
  @HttpCode(200)
  @UseGuards(AdminTokenGuard)
  @ApiBearerAuth(ADMIN_AUTH)
  @ApiQuery({ name: 'pairs', required: false, example: 'BTC/USD,ETH/USD' })
  @ApiOkResponse({ description: 'Polled now', schema: { type: 'object', properties: { message: { type: 'string' }, pairs: { type: 'array', items: { type: 'string', example: 'BTC/USD' } } } } })
  @ApiErrors([400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS'], [401, 'UNAUTHORIZED'], [404, 'NOT_FOUND'])
  async refresh(@Query('pairs') rawPairs: unknown): Promise<{ message: string; pairs: string[]; priced: string[]; unpriced: string[] }> {
    const { pairs, rejected } = parsePairList(queryString(rawPairs, 'pairs'), this.config.pairSet, this.config.maxPairsPerRequest);
    if (rejected.length > 0) throw rejected[0].error;
    const report = await this.poller.refresh(pairs);
    const message = !report.ran ? 'refresh not run: a poll is in progress or polling is off here' : report.unpriced.length === 0 ? 'refreshed' : 'refreshed; some pairs got no price';
    return { message, pairs: pairs.map(slashed), priced: report.priced.map((p) => slashed(p.pair)), unpriced: report.unpriced.map(slashed) };
  }

  private legacyPair(): string {
    if (!this.config.pairSet.has(LEGACY_PAIR)) throw new ApiError(404, 'UNSUPPORTED_PAIR', `${LEGACY_PAIR} is not served here`);
    return LEGACY_PAIR;
  }
}
