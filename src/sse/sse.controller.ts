import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '../http/api-docs';
import { SkipThrottle } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { ApiTokenErrors, schemaRef } from '../http/openapi';
import { SSE_PATH } from '../shared/wire';
import { SseEntry } from './sse-entry';
import { LEGACY_MESSAGE_STREAM_PATH, LEGACY_PRICE_STREAM_PATH, streamRoute as route } from '../http/edge-routes';

/**
 * The SSE routes as Nest knows them: their OpenAPI description, and HEAD (and any spelling
 * Express matches but the entry does not, e.g. a trailing slash). GET requests normally never
 * get here: SseEntry takes them off the HTTP server before Express (see there why). Both paths
 * go through `SseEntry.open`. Not rate-limited per request: the stream connection caps protect them.
 */
/** A stream's 200: its events (SseEvent, LegacySseEvent: each frame's fields) and an example. */
function streamResponse(events: string, event: 'SseEvent' | 'LegacySseEvent', example: string) {
  return ApiOkResponse({
    description: `An SSE stream (\`retry:\` first, a \`:\` heartbeat every HEARTBEAT_INTERVAL_MS). Events: ${events} See docs/api.md, "Server-Sent Events". On the wire:\n\n\`\`\`\n${example}\`\`\``,
    content: {
      'text/event-stream': {
        schema: { type: 'array', description: `The stream's events, in order, as text/event-stream frames`, items: schemaRef(event) },
      },
    },
  });
}

const TICK_EXAMPLE = '{"id":"1763758800123-0","pair":"BTC-USD","price":97123.45,"timestamp":"2025-11-21T21:00:00.123Z","source":"kraken"}';
const RESET_EXAMPLE = 'event: reset\ndata: {"reason":"history_gap","oldestId":"1763758790000-0","oldestTimestamp":"2025-11-21T20:59:50.000Z"}\n\n';

@ApiTags('streams')
@ApiQuery({ name: 'pairs', required: false, example: 'BTC-USD,ETH-USD' })
@ApiQuery({ name: 'lastEventId', required: false, description: 'resume after this id (the Last-Event-ID header wins)' })
@ApiQuery({ name: 'since', required: false, description: 'resume from this time: Unix s, Unix ms or ISO-8601' })
@ApiHeader({ name: 'Last-Event-ID', required: false })
@ApiQuery({ name: 'conflate', required: false, description: 'at most one tick per pair every this many ms (10 to 60000)' })
@ApiQuery({ name: 'delta', required: false, description: '1: ticks as per-pair deltas, event `d` (docs/api.md "Deltas"; /api/prices/stream only)' })
@ApiTokenErrors('stream', [400, 'INVALID_PAIR', 'UNSUPPORTED_PAIR', 'TOO_MANY_PAIRS', 'INVALID_RESUME_POINT', 'RESUME_POINT_IN_FUTURE', 'INVALID_QUERY', 'INVALID_DELTA'], [429, 'TOO_MANY_CONNECTIONS'], [503, 'SHUTTING_DOWN'])
@SkipThrottle()
@Controller()
export class SseController {
  constructor(private readonly entry: SseEntry) {}

  /** `?pairs=BTC-USD,ETH-USD&since=..&lastEventId=..`; no pairs: every configured pair. */
  @Get(SSE_PATH.slice(1))
  @ApiOperation({ summary: 'Stream ticks (SSE)' })
  @streamResponse(
    '`price` (with `id:`; data: a Tick), `reset` (data: a Reset: the resume point is gone).',
    'SseEvent',
    `retry: 2000\n\nevent: price\nid: 1763758800123-0\ndata: ${TICK_EXAMPLE}\n\n:\n\n${RESET_EXAMPLE}`,
  )
  prices(@Req() req: Request, @Res() res: Response): void {
    this.entry.open(req, res, route(SSE_PATH));
  }

  /** Legacy (Bitcoin tracker): named `price` events, BTC-USD unless `pairs` says otherwise. */
  @Get(LEGACY_PRICE_STREAM_PATH.slice(1))
  @ApiOperation({ summary: 'Stream BTC-USD ticks (Bitcoin Price Streamer route, SSE)' })
  @streamResponse(
    '`price` (with `id:`; data: a LegacyTick, the tick with `symbol` and `name`), `reset` (data: a Reset).',
    'LegacySseEvent',
    `retry: 2000\n\nevent: price\nid: 1763758800123-0\ndata: ${TICK_EXAMPLE.slice(0, -1)},"symbol":"BTC","name":"Bitcoin"}\n\n${RESET_EXAMPLE}`,
  )
  legacyPrice(@Req() req: Request, @Res() res: Response): void {
    this.entry.open(req, res, route(LEGACY_PRICE_STREAM_PATH));
  }

  /** Legacy: unnamed events (`onmessage`) whose data is the full tick, `{timestamp, price}` included. */
  @Get(LEGACY_MESSAGE_STREAM_PATH.slice(1))
  @ApiOperation({ summary: 'Stream BTC-USD ticks as unnamed events (for onmessage, SSE)' })
  @streamResponse(
    'unnamed events (with `id:`; data: a LegacyTick) for `onmessage`, and `reset` as a named event (data: a Reset).',
    'LegacySseEvent',
    `retry: 2000\n\nid: 1763758800123-0\ndata: ${TICK_EXAMPLE.slice(0, -1)},"symbol":"BTC","name":"Bitcoin"}\n\n${RESET_EXAMPLE}`,
  )
  legacyMessage(@Req() req: Request, @Res() res: Response): void {
    this.entry.open(req, res, route(LEGACY_MESSAGE_STREAM_PATH));
  }
}
