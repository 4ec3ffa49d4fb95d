import { Injectable, Logger, Optional, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { ApiError } from '../common/api-error';
import { toErrorBody } from '../common/api-exception.filter';
import { originAllowed } from '../common/origin';
import { requirePairList, searchParam } from '../common/query';
import { resolveResumePoint, type ResumePoint } from '../common/resume';
import { idMs } from '../common/tick-id';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { clientIp, ConnectionRegistry, type DisconnectReason, type Lease } from '../stream/connection-registry';
import { LiveFanout, type FanoutMember } from '../stream/live-fanout';
import { PriceStreamService } from '../stream/price-stream.service';
import { WS_CLOSE_SERVICE_RESTART, WS_PATH, type ErrorBody, type ResetEvent, type Tick, type WsMessage } from '../shared/wire';

/** Clients only ever send pongs; anything bigger than this closes the connection (1009). */
const MAX_CLIENT_MESSAGE_BYTES = 1024;

/** Each tick is serialised once, whatever the number of WebSocket clients. */
const frames = new WeakMap<Tick, string>();
function priceFrame(tick: Tick): string {
  let frame = frames.get(tick);
  if (frame === undefined) {
    frame = JSON.stringify({ type: 'price', ...tick } satisfies WsMessage);
    frames.set(tick, frame);
  }
  return frame;
}
const resetFrame = (reset: ResetEvent): string => JSON.stringify({ type: 'reset', ...reset } satisfies WsMessage);

/** One connection: its socket, registry slot and liveness; ticks reach it through the feed's fan-out. */
class WsClient implements FanoutMember {
  alive = true;
  /** Bytes its replay queued in one go, allowed on top of the limit until the backlog drains. */
  graceBytes = 0;
  endReason?: DisconnectReason;

  constructor(
    readonly ws: WebSocket,
    readonly lease: Lease,
    private readonly feed: PriceWsFeed,
  ) {}

  // Its own path (the replay, and what comes before it joins the sets) is written in one burst
  // that may pass the limit at once: it counts as grace until the backlog drains.
  onTick(tick: Tick): void {
    if (this.feed.send(this, priceFrame(tick), true)) this.feed.sent(tick, 1);
  }

  // One frame, checked for slowness like a live tick.
  onReset(reset: ResetEvent): void {
    if (this.feed.send(this, resetFrame(reset), false)) this.feed.sent(undefined, 1);
  }

  onEnd(): void {
    this.feed.restart(this);
  }

  onError(err: unknown): void {
    this.feed.failed(this, err);
  }
}

/**
 * Plain WebSocket feed `GET /api/ws?pairs=..&since=..&lastEventId=..` on the app's HTTP server,
 * beside Socket.IO: only upgrades for WS_PATH are taken, the rest (e.g. /socket.io/) are left
 * to their owners.
 *
 * Refusals (bad query, foreign Origin, too many connections, shutdown) happen before the upgrade:
 * an HTTP status and an ErrorBody, like SSE's 4xx, and no socket is spent on them. Browsers
 * cannot read that status (they see close 1006); the REST routes give the same errors to check.
 *
 * Ticks: a client replays on its own path, then joins the pairs' sets of a LiveFanout, like SSE.
 *
 * Slow consumers: `bufferedAmount` counts bytes the kernel has not taken yet; a client whose
 * backlog passes CLIENT_BUFFER_SIZE frames (bufferedAmount > CLIENT_BUFFER_SIZE × the frame
 * being sent) is terminated at once (a close frame would queue behind the backlog) and resumes
 * from its last id. Dead peers: a ping every HEARTBEAT_INTERVAL_MS, terminated when the
 * previous one got no pong. Shutdown: close 1012 (service restart), clients reconnect.
 */
@Injectable()
export class PriceWsFeed implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(PriceWsFeed.name);
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: false });
  private readonly clients = new Map<WebSocket, WsClient>();
  private readonly fanout: LiveFanout<WsClient>;
  private server?: Server;
  private heartbeat?: NodeJS.Timeout;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.upgrade(req, socket, head);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly stream: PriceStreamService,
    private readonly registry: ConnectionRegistry,
    private readonly lifecycle: LifecycleService,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    this.fanout = new LiveFanout<WsClient>(stream, config.pairs, (tick, members) => this.broadcast(tick, members));
  }

  onApplicationBootstrap(): void {
    this.fanout.start();
    this.server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    this.server.on('upgrade', this.onUpgrade);
    this.heartbeat = setInterval(() => this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Closes every connection with 1012; waits for them (bounded), then terminates the rest. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    this.server?.off('upgrade', this.onUpgrade);
    if (this.clients.size === 0) return;
    this.logger.log({ msg: 'closing WebSocket clients with 1012', clients: this.clients.size });
    const closed = [...this.clients.keys()].map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
    for (const client of this.clients.values()) this.restart(client);
    const bound = Math.min(2000, this.config.shutdownTimeoutMs / 2);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => (timer = setTimeout(resolve, bound)))]);
    clearTimeout(timer);
    for (const ws of this.clients.keys()) ws.terminate();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== WS_PATH) return;
    socket.on('error', () => socket.destroy());
    let pairs: string[];
    let resume: ResumePoint | undefined;
    let lease: Lease;
    try {
      if (this.lifecycle.isShuttingDown) throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down; reconnect shortly');
      if (!originAllowed(req.headers.origin, req.headers.host, this.config.corsOrigins)) {
        throw new ApiError(403, 'FORBIDDEN_ORIGIN', 'this origin may not open streams here');
      }
      const param = (name: string) => searchParam(url.searchParams, name);
      pairs = requirePairList(param('pairs'), this.config.pairSet, this.config.maxPairsPerRequest);
      resume = resolveResumePoint({ lastEventId: param('lastEventId'), since: param('since') }, Date.now());
      lease = this.registry.acquire('ws', clientIp(req.headers, req.socket.remoteAddress, this.config.trustProxy));
    } catch (err) {
      return refuse(socket, toErrorBody(err));
    }
    // ws answers a malformed handshake itself and never calls back: the slot is freed here then.
    let attached = false;
    socket.once('close', () => {
      if (!attached) lease.release('error');
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      attached = true;
      this.attach(ws, pairs, resume, lease);
    });
  }

  private attach(ws: WebSocket, pairs: string[], resume: ResumePoint | undefined, lease: Lease): void {
    const client = new WsClient(ws, lease, this);
    this.clients.set(ws, client);
    ws.on('pong', () => (client.alive = true));
    ws.on('error', (err) => this.logger.debug({ msg: 'WebSocket error', ip: lease.ip, err: err.message }));
    ws.on('close', (code) => {
      this.fanout.leave(client);
      this.clients.delete(ws);
      lease.release(client.endReason ?? 'client');
      this.logger.debug({ msg: 'stream closed', transport: 'ws', ip: lease.ip, code, reason: client.endReason ?? 'client' });
    });
    this.logger.debug({ msg: 'stream opened', transport: 'ws', ip: lease.ip, pairs, resume: resume?.kind ?? 'none' });
    this.fanout.join(client, pairs, resume);
  }

  /** @internal Writes one frame, or terminates a client whose backlog passed its limit; returns whether it was sent. */
  send(client: WsClient, frame: string, ownPath: boolean): boolean {
    const ws = client.ws;
    if (ws.readyState !== WebSocket.OPEN || client.endReason) return false;
    const limit = this.config.clientBufferSize * Buffer.byteLength(frame);
    const backlog = ws.bufferedAmount;
    if (backlog <= limit) client.graceBytes = 0;
    else if (!ownPath && backlog > limit + client.graceBytes) {
      client.endReason = 'slow';
      this.logger.warn({ msg: 'slow WebSocket consumer terminated', ip: client.lease.ip, bufferedBytes: backlog });
      ws.terminate();
      return false;
    }
    if (ownPath) client.graceBytes += frame.length;
    ws.send(frame);
    return true;
  }

  /** @internal Counts messages sent (a tick's, with its delivery lag, or a reset). */
  sent(tick: Tick | undefined, count: number): void {
    this.metrics?.sent('ws', tick && idMs(tick.id), count);
  }

  /** @internal The client's resume read failed. */
  failed(client: WsClient, err: unknown): void {
    this.logger.error({ msg: 'WebSocket stream failed', ip: client.lease.ip, err });
    client.endReason = 'error';
    client.ws.close(1011, 'internal error');
  }

  /** @internal The price stream ended (shutdown): close with 1012 so the client reconnects and resumes. */
  restart(client: WsClient): void {
    if (!client.endReason) client.endReason = 'shutdown';
    this.fanout.leave(client);
    if (client.ws.readyState === WebSocket.OPEN) client.ws.close(WS_CLOSE_SERVICE_RESTART, 'service restart; reconnect and resume');
  }

  /** Live ticks: one frame per tick for every client of the pair. */
  private broadcast(tick: Tick, members: ReadonlySet<WsClient>): void {
    const frame = priceFrame(tick);
    let count = 0;
    for (const client of members) if (this.send(client, frame, false)) count++;
    this.sent(tick, count);
  }

  private beat(): void {
    for (const [ws, client] of this.clients) {
      if (!client.alive) {
        client.endReason = 'error';
        this.logger.debug({ msg: 'WebSocket peer missed a pong, terminated', ip: client.lease.ip });
        ws.terminate();
        continue;
      }
      client.alive = false;
      ws.ping();
    }
  }
}

function refuse(socket: Duplex, body: ErrorBody): void {
  const json = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${body.statusCode} ${STATUS_CODES[body.statusCode] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
}
