import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ApiError } from '../common/api-error';
import { ApiErrors, schemaRef } from '../common/openapi';
import { checkPair } from '../common/pair';
import { parseLimit, queryString } from '../common/query';
import { AppConfig } from '../config/app-config';
import { CANDLE_INTERVALS, type CandleInterval, type CandlesResponse } from '../shared/wire';
import { CandlesService } from './candles.service';

const INTERVALS = Object.keys(CANDLE_INTERVALS) as CandleInterval[];

function parseInterval(raw: string | undefined): CandleInterval {
  if (raw === undefined || raw === '') return '1m';
  if (!(INTERVALS as string[]).includes(raw)) throw new ApiError(400, 'INVALID_INTERVAL', `interval must be one of ${INTERVALS.join(', ')}`);
  return raw as CandleInterval;
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
  @ApiQuery({ name: 'limit', required: false, description: 'how many intervals back from now, the current one included: 1 to 1000, default 100' })
  @ApiOkResponse({
    description: 'OHLC candles from the history window, oldest first, the last one still open; an interval without a tick has no candle. complete is false when the window does not reach back to the first interval asked for',
    schema: {
      type: 'object',
      properties: { pair: { type: 'string' }, interval: { type: 'string', enum: INTERVALS }, complete: { type: 'boolean' }, candles: { type: 'array', items: schemaRef('Candle') } },
    },
  })
  @ApiErrors([400, 'INVALID_PAIR', 'INVALID_INTERVAL', 'INVALID_LIMIT', 'INVALID_QUERY'], [404, 'UNSUPPORTED_PAIR'])
  list(@Param('pair') rawPair: string, @Query('interval') interval: unknown, @Query('limit') limit: unknown): Promise<CandlesResponse> {
    const check = checkPair(rawPair, this.config.pairSet, 404);
    if (!check.ok) throw check.error;
    return this.candles.candles(check.pair, parseInterval(queryString(interval, 'interval')), parseLimit(queryString(limit, 'limit'), 100, 1000));
  }
}
