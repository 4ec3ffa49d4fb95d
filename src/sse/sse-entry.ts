import { Injectable, Logger, Optional } from '@nestjs/common';
import { ApiError } from '../http/api-error';
import { toErrorBody } from '../http/api-exception.filter';
import { checkTargetLength, searchParam } from '../http/query';
import { releaseParser } from '../http/release-parser';
import type { StreamRequest, StreamResponse } from '../http/socket-response';
import { requestId } from '../http/request-id';
import { AppConfig } from '../config/app-config';
import { markRoute } from '../metrics/http-metrics';
import { MetricsService } from '../metrics/metrics.service';
import { StreamGate } from '../stream/connection-registry';
import { STREAM_PATHS, type SseRoute } from '../http/edge-routes';
import { EdgeRouter, pathOf } from '../http/edge-router';
import { SseService } from './sse.service';
import { simpleCors } from '../http/cors';
import { bearerToken, redactToken } from '../auth/credentials';
import { SSE_PATH } from '../shared/wire';

/**
 * Where SSE requests come in: validation, the registry lease, then `SseService.stream`.
 *
 * GET requests for the stream routes are taken off the HTTP server ahead of Express (the edge
 * router's `stream` rows, edge-routes.ts, name this handler, `sse`): most by the stream door
 * (http/stream-door.ts), read off their connections, with a SocketResponse and no Node request
 * or response at all; the others (a head split over reads, a request on a connection that served
 * one before) through Node's server, with its IncomingMessage and ServerResponse. Express would
 * give every request and response its own hidden class (it swaps their prototypes) and keep its router
 * state, parsed URL and query on them; a request that is answered at once drops all that, but a
 * stream keeps it for its whole life: ~5 KB per stream, measured. What the middleware does for
 * these routes is done here: request id, CORS for CORS_ORIGINS, 414, JSON errors with stable
 * codes. No helmet headers and no request logger (see LoggingModule): the stream logs its own
 * refusal and close. SseController declares the routes for Nest (OpenAPI) and serves what
 * Express still routes to them (HEAD) through `open` as well.
 */
@Injectable()
export class SseEntry {
  private readonly logger = new Logger(SseEntry.name);
  private parserKeptSaid = false;

  constructor(
    router: EdgeRouter,
    private readonly sse: SseService,
    private readonly gate: StreamGate,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    router.serve('stream', 'sse', (req, res, route) => this.open(req, res, route));
  }

  /** Starts a stream, or answers with a JSON error (logged as a refusal). */
  open(req: StreamRequest, res: StreamResponse, route: SseRoute): void {
    const id = requestId(req, res);
    // The request's duration is the time to its response head (a stream's life is not a latency).
    // A HEAD came through Express, whose request logger times it already.
    const timed = req.method === 'HEAD' ? undefined : this.metrics?.http.start();
    const path = pathOf(req.url);
    // HEAD comes through Express, whose route names the template of a path spelled otherwise.
    if (STREAM_PATHS.has(path)) markRoute(req, path);
    simpleCors(req, res, this.config.corsOrigins);
    this.start(req, res, route, id).then(
      () => timed?.(req, res.statusCode),
      (err: unknown) => {
        this.refuse(req, res, id, err);
        timed?.(req, res.statusCode);
      },
    );
  }

  private refuse(req: StreamRequest, res: StreamResponse, id: string, err: unknown): void {
    const body = toErrorBody(err);
    if (err instanceof ApiError) this.logger.warn({ msg: 'stream refused', transport: 'sse', requestId: id, status: body.statusCode, code: body.code, url: redactToken(req.url)?.slice(0, 200) });
    else this.logger.error({ msg: 'stream failed to start', requestId: id, err });
    if (res.headersSent || res.destroyed) return void res.destroy();
    const json = JSON.stringify(body);
    res.writeHead(body.statusCode, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
    res.end(req.method === 'HEAD' ? undefined : json);
  }

  private async start(req: StreamRequest, res: StreamResponse, route: SseRoute, id: string): Promise<void> {
    const target = req.url ?? '/';
    checkTargetLength(target);
    const query = new URL(target, 'http://localhost').searchParams;
    const param = (name: string) => searchParam(query, name);
    const header = req.headers['last-event-id'];
    const streamQuery = {
      pairs: param('pairs'),
      header: Array.isArray(header) ? header.join(',') : header,
      lastEventId: param('lastEventId'),
      since: param('since'),
      conflate: param('conflate'),
      delta: param('delta'),
    };
    // Deltas are a frame of our route's; the legacy routes' clients read ticks only.
    if (route.kind !== 'price' && streamQuery.delta !== undefined) throw new ApiError(400, 'INVALID_DELTA', `delta is offered on ${SSE_PATH} only`);
    // The header, or the `token` parameter for EventSource (which cannot set headers); never logged.
    const token = bearerToken(req.headers) ?? query.get('token') ?? undefined;
    if (req.method === 'HEAD') {
      await this.gate.check('sse', streamQuery, route.defaultPair, token);
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform' });
      res.end();
      return;
    }
    const { command, lease } = await this.gate.open('sse', streamQuery, this.gate.clientIp(req.headers, req.socket.remoteAddress), route.defaultPair, token);
    // With workers the slot came from the primary: the client may have gone meanwhile.
    if (res.destroyed || req.socket.destroyed) return lease.cancel();
    req.socket.setNoDelay(true);
    // The connection closes with the stream (`Connection: close`): its parser is given back once
    // the head is out, and no next request is read on it (http/release-parser.ts).
    res.shouldKeepAlive = false;
    this.sse.stream(res, { command, kind: route.kind, lease, requestId: id });
    if (!res.destroyed && releaseParser(req, res) === 'unknown node' && !this.parserKeptSaid) {
      this.parserKeptSaid = true;
      this.logger.warn({ msg: "streams keep their HTTP parser: this Node's HTTP server is not the one expected", node: process.version });
    }
  }
}
