import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '../http/api-docs';
import type { Response } from 'express';
import { ApiTokenErrors, schemaRef } from '../http/openapi';
import { checkPair } from '../domain/pair';
import { parseLimit, queryString } from '../http/query';
import { parseSince } from '../domain/resume';
import { AppConfig } from '../config/app-config';
import type { HistoryResponse, PairsResponse, PricesResponse } from '../shared/wire';
import { sendLatest } from './latest-body';
import { pricesList } from './price-lists';
import { PricesService } from './prices.service';

@ApiTags('prices')
@Controller('api')
export class PricesController {
  constructor(
    private readonly prices: PricesService,
    private readonly config: AppConfig,
  ) {}

  @Get('pairs')
  @ApiOperation({ summary: 'Configured pairs and their latest ticks' })
  @ApiTokenErrors('rest')
  @ApiOkResponse({
    description: 'Configured pairs, each with its latest tick (or null) and whether it is fresh',
    schema: { type: 'object', properties: { pairs: { type: 'array', items: { type: 'object', properties: { pair: { type: 'string' }, latest: { type: 'object', allOf: [schemaRef('Tick')], nullable: true }, fresh: { type: 'boolean' } } } } } },
  })
  pairs(): PairsResponse {
    return { pairs: this.prices.pairInfos() };
  }

  @Get('prices')
  @ApiOperation({ summary: 'Latest tick of several pairs' })
  @ApiQuery({ name: 'pairs', required: false, description: 'Comma-separated pairs (BTC-USD or BTC/USD); all configured pairs when absent', example: 'BTC-USD,ETH-USD' })
  @ApiOkResponse({ description: 'The latest tick of each pair', schema: { type: 'object', properties: { prices: { type: 'array', items: schemaRef('Tick') } } } })
  @ApiResponse({
    status: 206,
    description: 'Some pairs have no price yet or are invalid (NO_PRICE_YET, INVALID_PAIR, UNSUPPORTED_PAIR per pair)',
    schema: { type: 'object', properties: { prices: { type: 'array', items: schemaRef('Tick') }, errors: { type: 'array', items: schemaRef('PairError') } } },
  })
  @ApiTokenErrors('rest', [400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS', 'INVALID_QUERY'])
  list(@Query('pairs') rawPairs: unknown, @Res({ passthrough: true }) res: Response): PricesResponse {
    // The edge router answers the same through pricesList (its `prices` row) ahead of Express.
    const { status, body } = pricesList(queryString(rawPairs, 'pairs'), { config: this.config, prices: this.prices });
    res.status(status);
    return body;
  }

  @Get('prices/:pair')
  @ApiOperation({ summary: 'Latest tick of a pair' })
  @ApiParam({ name: 'pair', example: 'BTC-USD' })
  @ApiOkResponse({ description: 'The latest tick', schema: schemaRef('Tick') })
  @ApiTokenErrors('rest', [400, 'INVALID_PAIR'], [404, 'UNSUPPORTED_PAIR', 'NO_PRICE_YET'])
  one(@Param('pair') rawPair: string, @Res({ passthrough: true }) res: Response): string {
    return sendLatest(res, this.prices.latestBody(this.pathPair(rawPair)));
  }

  @Get('prices/:pair/history')
  @ApiOperation({ summary: 'Recent ticks of a pair' })
  @ApiParam({ name: 'pair', example: 'BTC-USD' })
  @ApiQuery({ name: 'since', required: false, description: 'Unix seconds, Unix milliseconds or ISO-8601 (inclusive); the newest ticks when absent' })
  @ApiQuery({ name: 'limit', required: false, description: '1 to 1000, default 100' })
  @ApiOkResponse({
    description: 'Ticks oldest first; complete is false when the window does not reach back to since',
    schema: { type: 'object', properties: { pair: { type: 'string' }, count: { type: 'integer' }, complete: { type: 'boolean' }, updates: { type: 'array', items: schemaRef('Tick') } } },
  })
  @ApiTokenErrors('rest', [400, 'INVALID_PAIR', 'INVALID_LIMIT', 'INVALID_RESUME_POINT', 'RESUME_POINT_IN_FUTURE', 'INVALID_QUERY'], [404, 'UNSUPPORTED_PAIR'])
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
