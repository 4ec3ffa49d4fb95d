import { Controller, HttpCode, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '../http/api-docs';
import { ADMIN_AUTH, ApiErrors } from '../http/openapi';
import { parsePairList, queryString } from '../http/query';
import { AppConfig } from '../config/app-config';
import { PricePollerService, type PollReport } from '../ingest/price-poller.service';
import { AdminTokenGuard } from './admin-token.guard';

@ApiTags('admin')
@ApiBearerAuth(ADMIN_AUTH)
@UseGuards(AdminTokenGuard)
@Controller('api/admin')
export class AdminController {
  constructor(
    private readonly poller: PricePollerService,
    private readonly config: AppConfig,
  ) {}

  /** Polls the sources now for the given pairs (all when absent). */
  @Post('refresh')
  @ApiOperation({ summary: 'Poll the sources now (admin token)' })
  @HttpCode(200)
  @ApiQuery({ name: 'pairs', required: false, example: 'BTC-USD' })
  @ApiOkResponse({
    description: 'The poll report: which pairs got a price from which source, and which none',
    schema: { type: 'object', properties: { ran: { type: 'boolean' }, priced: { type: 'array' }, unpriced: { type: 'array', items: { type: 'string' } } } },
  })
  @ApiErrors([400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS'], [401, 'UNAUTHORIZED'], [404, 'NOT_FOUND'])
  refresh(@Query('pairs') rawPairs: unknown): Promise<PollReport> {
    const { pairs, rejected } = parsePairList(queryString(rawPairs, 'pairs'), this.config.pairSet, this.config.maxPairsPerRequest);
    if (rejected.length > 0) throw rejected[0].error;
    return this.poller.refresh(pairs);
  }
}
