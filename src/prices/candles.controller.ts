import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiTags } from '../http/api-docs';
import type { Response } from 'express';
import { ApiError } from '../http/api-error';
import { ApiTokenErrors, schemaRef } from '../http/openapi';
import { checkPair } from '../domain/pair';
import { parseLimit, queryString } from '../http/query';
import { AppConfig } from '../config/app-config';
import { CANDLE_INTERVALS, type CandleInterval, type ErrorCode } from '../shared/wire';
import { CandlesService } from './candles.service';

const INTERVALS = Object.keys(CANDLE_INTERVALS) as CandleInterval[];
/** Times before this are a mistake (the earliest a crypto price could be from), after it plausible. */
const EARLIEST_MS = Date.UTC(2009, 0, 1);
const LATEST_MS = Date.UTC(2200, 0, 1);

function parseInterval(raw: string | undefined): CandleInterval {
  if (raw === undefined || raw === '') return '1m';
  if (!(INTERVALS as string[]).includes(raw)) throw new ApiError(400, 'INVALID_INTERVAL', `interval must be one of ${INTERVALS.join(', ')}`);
  return raw as CandleInterval;
}

/** A time as epoch milliseconds (digits) or ISO-8601 with a time zone; undefined when not given. */
export function parseTime(raw: string | undefined, name: 'from' | 'to'): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const code: ErrorCode = name === 'from' ? 'INVALID_FROM' : 'INVALID_TO';
  const ms = /^\d{1,16}$/.test(raw) ? Number(raw) : /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$/.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms) || ms < EARLIEST_MS || ms > LATEST_MS) {
    throw new ApiError(400, code, `${name} must be a time in epoch milliseconds or ISO-8601 with a zone (e.g. 2026-01-01T00:00:00Z), from 2009 on`);
  }
  return ms;
}

@ApiTags('prices')
@Controller('api')
export class CandlesController {
  constructor(
    private readonly candles: CandlesService,
    private readonly config: AppConfig,
  ) {}

  @Get('prices/:pair/candles')
  @ApiOperation({ summary: 'OHLC candles of a pair' })
  @ApiParam({ name: 'pair', example: 'BTC-USD' })
  @ApiQuery({ name: 'interval', required: false, enum: INTERVALS, description: 'candle width, default 1m' })
  @ApiQuery({ name: 'from', required: false, description: 'the first candle: epoch ms or ISO-8601; with it, the answer runs forward from there' })
  @ApiQuery({ name: 'to', required: false, description: 'the last candle (inclusive): epoch ms or ISO-8601; default now' })
  @ApiQuery({ name: 'limit', required: false, description: 'how many intervals: 1 to 1000, default 100' })
  @ApiOkResponse({
    description:
      'OHLC candles from the candle store (kept CANDLE_RETENTION, backfilled from the exchanges at start), oldest first; the open one has closed:false. An interval without data has no candle and is listed in gaps. ETag: If-None-Match answers 304',
    schema: {
      type: 'object',
      properties: {
        pair: { type: 'string' },
        interval: { type: 'string', enum: INTERVALS },
        from: { type: 'string', format: 'date-time' },
        to: { type: 'string', format: 'date-time' },
        candles: { type: 'array', items: schemaRef('Candle') },
        gaps: { type: 'array', items: { type: 'object', properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time', description: 'exclusive' } } } },
      },
    },
  })
  @ApiTokenErrors('rest', [400, 'INVALID_PAIR', 'INVALID_INTERVAL', 'INVALID_FROM', 'INVALID_TO', 'INVALID_RANGE', 'INVALID_LIMIT', 'INVALID_QUERY'], [404, 'UNSUPPORTED_PAIR'])
  list(
    @Param('pair') rawPair: string,
    @Query('interval') interval: unknown,
    @Query('from') from: unknown,
    @Query('to') to: unknown,
    @Query('limit') limit: unknown,
    @Res({ passthrough: true }) res: Response,
  ): string {
    const check = checkPair(rawPair, this.config.pairSet, 404);
    if (!check.ok) throw check.error;
    const width = parseInterval(queryString(interval, 'interval'));
    const fromMs = parseTime(queryString(from, 'from'), 'from');
    const toMs = parseTime(queryString(to, 'to'), 'to');
    if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) throw new ApiError(400, 'INVALID_RANGE', 'from is after to');
    const body = this.candles.body(check.pair, width, { fromMs, toMs, limit: parseLimit(queryString(limit, 'limit'), 100, 1000) });
    res.setHeader('ETag', body.etag);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    return body.json;
  }
}
