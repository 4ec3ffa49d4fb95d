import { Controller, Get, Logger, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { ApiError } from '../common/api-error';
import { ApiErrors } from '../common/openapi';
import { queryString, requirePairList } from '../common/query';
import { resolveResumePoint } from '../common/resume';
import { AppConfig } from '../config/app-config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { requestId } from '../logging/logging.module';
import { SSE_PATH } from '../shared/wire';
import { ConnectionRegistry, clientIp } from '../stream/connection-registry';
import type { FrameKind } from './sse-frames';
import { SseService } from './sse.service';

/** The pair of the legacy routes when the request names none (as the Bitcoin tracker had it). */
const LEGACY_PAIR = 'BTC-USD';

/**
 * SSE routes on the raw Express response (Nest's @Sse has no Last-Event-ID, heartbeats or
 * bounded backlog). Every check that can fail answers with a JSON error before the stream starts.
 * Not rate-limited per request: the stream connection caps protect them.
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
  private readonly logger = new Logger(SseController.name);

  constructor(
    private readonly sse: SseService,
    private readonly registry: ConnectionRegistry,
    private readonly lifecycle: LifecycleService,
    private readonly config: AppConfig,
  ) {}

  /** `?pairs=BTC-USD,ETH-USD&since=..&lastEventId=..`; no pairs: every configured pair. */
  @Get(SSE_PATH.slice(1))
  prices(@Req() req: Request, @Res() res: Response): void {
    this.open(req, res, 'price', undefined);
  }

  /** Legacy (Bitcoin tracker): named `price` events, BTC-USD unless `pairs` says otherwise. */
  @Get('api/price/stream')
  legacyPrice(@Req() req: Request, @Res() res: Response): void {
    this.open(req, res, 'price', LEGACY_PAIR);
  }

  /** Legacy: unnamed events (`onmessage`) whose data is the full tick, `{timestamp, price}` included. */
  @Get('stream')
  legacyMessage(@Req() req: Request, @Res() res: Response): void {
    this.open(req, res, 'message', LEGACY_PAIR);
  }

  private open(req: Request, res: Response, kind: FrameKind, defaultPair: string | undefined): void {
    // The SSE routes are outside the request logger (see LoggingModule): id and log lines are ours.
    const id = requestId(req, res);
    try {
      this.start(req, res, kind, defaultPair, id);
    } catch (err) {
      if (err instanceof ApiError) this.logger.warn({ msg: 'stream refused', transport: 'sse', requestId: id, status: err.getStatus(), code: err.code, url: req.originalUrl });
      throw err;
    }
  }

  private start(req: Request, res: Response, kind: FrameKind, defaultPair: string | undefined, id: string): void {
    const rawPairs = queryString(req.query.pairs, 'pairs');
    let pairs: string[];
    if ((rawPairs === undefined || rawPairs.trim() === '') && defaultPair !== undefined) {
      if (!this.config.pairSet.has(defaultPair)) throw new ApiError(404, 'UNSUPPORTED_PAIR', `${defaultPair} is not served here`);
      pairs = [defaultPair];
    } else {
      pairs = requirePairList(rawPairs, this.config.pairSet, this.config.maxPairsPerRequest);
    }
    const header = req.headers['last-event-id'];
    const resume = resolveResumePoint(
      {
        header: Array.isArray(header) ? header.join(',') : header,
        lastEventId: queryString(req.query.lastEventId, 'lastEventId'),
        since: queryString(req.query.since, 'since'),
      },
      Date.now(),
    );
    if (this.lifecycle.isShuttingDown) throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down; reconnect elsewhere');
    const lease = this.registry.acquire('sse', clientIp(req.headers, req.socket.remoteAddress, this.config.trustProxy));
    req.socket.setNoDelay(true);
    this.sse.stream(res, { pairs, resume, kind, lease, requestId: id });
  }
}
