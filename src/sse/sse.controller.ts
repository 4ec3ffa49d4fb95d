import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ApiError } from '../common/api-error';
import { queryString, requirePairList } from '../common/query';
import { resolveResumePoint } from '../common/resume';
import { AppConfig } from '../config/app-config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { SSE_PATH } from '../shared/wire';
import { ConnectionRegistry, clientIp } from '../stream/connection-registry';
import type { FrameKind } from './sse-frames';
import { SseService } from './sse.service';

/** Longer request targets are refused with 414 (Node itself only stops at 16 KiB of headers). */
export const MAX_URL_LENGTH = 8192;

/** The pair of the legacy routes when the request names none (as the Bitcoin tracker had it). */
const LEGACY_PAIR = 'BTC-USD';

/**
 * SSE routes on the raw Express response (Nest's @Sse has no Last-Event-ID, heartbeats or
 * bounded backlog). Every check that can fail answers with a JSON error before the stream starts.
 */
@Controller()
export class SseController {
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
    if (req.originalUrl.length > MAX_URL_LENGTH) throw new ApiError(414, 'URI_TOO_LONG', `the request target is longer than ${MAX_URL_LENGTH} characters`);
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
    this.sse.stream(res, { pairs, resume, kind, lease });
  }
}
