import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { ApiErrors } from '../common/openapi';
import { SSE_PATH } from '../shared/wire';
import { SseEntry } from './sse-entry';
import { LEGACY_MESSAGE_STREAM_PATH, LEGACY_PRICE_STREAM_PATH, SSE_ROUTE_TABLE, type SseRoute } from './sse-routes';

const route = (path: string): SseRoute => SSE_ROUTE_TABLE.get(path)!;

/**
 * The SSE routes as Nest knows them: their OpenAPI description, and HEAD (and any spelling
 * Express matches but the entry does not, e.g. a trailing slash). GET requests normally never
 * get here: SseEntry takes them off the HTTP server before Express (see there why). Both paths
 * go through `SseEntry.open`. Not rate-limited per request: the stream connection caps protect them.
 */
@ApiTags('streams')
@ApiProduces('text/event-stream')
@ApiQuery({ name: 'pairs', required: false, example: 'BTC-USD,ETH-USD' })
@ApiQuery({ name: 'lastEventId', required: false, description: 'resume after this id (the Last-Event-ID header wins)' })
@ApiQuery({ name: 'since', required: false, description: 'resume from this time: Unix s, Unix ms or ISO-8601' })
@ApiHeader({ name: 'Last-Event-ID', required: false })
@ApiOkResponse({ description: 'An SSE stream: `event: price` with `id:` and the tick as `data:`, `event: reset` on a history gap, `:` heartbeats. See docs/api.md.' })
@ApiErrors([400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS', 'INVALID_RESUME_POINT', 'RESUME_POINT_IN_FUTURE', 'INVALID_QUERY'], [429, 'TOO_MANY_CONNECTIONS'], [503, 'SHUTTING_DOWN'])
@SkipThrottle()
@Controller()
export class SseController {
  constructor(private readonly entry: SseEntry) {}

  /** `?pairs=BTC-USD,ETH-USD&since=..&lastEventId=..`; no pairs: every configured pair. */
  @Get(SSE_PATH.slice(1))
  prices(@Req() req: Request, @Res() res: Response): void {
    this.entry.open(req, res, route(SSE_PATH));
  }

  /** Legacy (Bitcoin tracker): named `price` events, BTC-USD unless `pairs` says otherwise. */
  @Get(LEGACY_PRICE_STREAM_PATH.slice(1))
  legacyPrice(@Req() req: Request, @Res() res: Response): void {
    this.entry.open(req, res, route(LEGACY_PRICE_STREAM_PATH));
  }

  /** Legacy: unnamed events (`onmessage`) whose data is the full tick, `{timestamp, price}` included. */
  @Get(LEGACY_MESSAGE_STREAM_PATH.slice(1))
  legacyMessage(@Req() req: Request, @Res() res: Response): void {
    this.entry.open(req, res, route(LEGACY_MESSAGE_STREAM_PATH));
  }
}
