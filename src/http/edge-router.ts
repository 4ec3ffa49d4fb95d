import { Global, Injectable, Logger, Module, Optional, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { checkRest } from '../auth/rest-auth';
import { StreamAuth } from '../auth/stream-auth';
import { StreamGate } from '../stream/connection-registry';
import { StreamModule } from '../stream/stream.module';
import { serveWithoutUpgrade } from '../ws/plain-request';
import { EDGE_ROUTES, edgeRoute, type EdgeHandlerName, type EdgeKind, type EdgeRoute, type SseRoute } from './edge-routes';
import { FastRest, type FastRestHandler } from './fast-rest';
import { RestRateLimit } from './rate-limit';
import { ownSocket } from './socket-guard';
import { SocketResponse, type StreamRequest, type StreamResponse } from './socket-response';
import { installStreamDoor } from './stream-door';
import type { RequestHead } from './request-head';
import { inSlices, WRITE_PACE } from '../util/sliced-pass';
import { TurnBatcher } from '../util/turn-batcher';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type Join = { socket: Duplex | undefined; run: () => void };
const logger = new Logger('EdgeRouter');

/**
 * Stream joins (SSE requests; upgrades: the WebSocket feed's, engine.io's) are gathered for
 * JOIN_GATHER_MS from the first one read, then started together in arrival order, in slices of
 * ~10 ms with the event loop in between (util/sliced-pass.ts). Node accepts one connection per
 * listening socket per event-loop turn, and in a reconnect storm thousands of connections
 * arrive within a few hundred milliseconds. Started in the turn that read them, a poll phase
 * over a thousand readable sockets would hold the loop for hundreds of milliseconds; started at
 * the end of that turn, nearly every turn would carry a join or two (~0.3 ms each) for its one
 * accept. Either way the kernel's accept queue (4,096) overflows, and every SYN it drops is sent
 * again only 1 s, 3 s later. Gathered, the turns in between only accept and parse, and the
 * joins run in full slices: a worker kill's ~5,000 reconnects are back at p99 1.2–1.9 s where
 * they took 1.9–2.3 s (benchmarks.md, "Issue 26, third round"). A lone join waits 5 ms.
 */
export const JOIN_GATHER_MS = 5;
const joins = new TurnBatcher<Join>((batch) => inSlices(batch, (join) => join.run(), WRITE_PACE, { failed: joinFailed }), { gatherMs: JOIN_GATHER_MS });

/** A join that threw loses its connection, not the process or the joins after it. */
function joinFailed(join: Join, err: unknown): void {
  logger.error({ msg: 'stream failed to start', err });
  join.socket?.destroy();
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** What serves each kind of row (edge-routes.ts). */
export type EdgeHandlers = {
  stream: (req: StreamRequest, res: StreamResponse, route: SseRoute) => void;
  rest: FastRestHandler;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, route: EdgeRoute) => void;
};

/**
 * The one front door ahead of Express: the HTTP server's only `request` and `upgrade` listener.
 * Each request is looked up in EDGE_ROUTES (edge-routes.ts) and served by its row's handler:
 * a stream (SseEntry), a fast REST answer (FastRest around the handler), an upgrade (the
 * WebSocket feed, engine.io); everything else goes on to the listeners that were there before
 * (Express, behind engine.io's own for `/socket.io/`), and an upgrade no row takes is served as
 * the plain request it also is (plain-request.ts). The modules that own the handlers register
 * them (`serve`) while they initialise; the router takes the server over at bootstrap.
 *
 * Ahead of Node's HTTP server itself, the stream door (stream-door.ts) reads each connection's
 * first bytes: a stream row's whole plain GET is served from there, on the socket, with no
 * IncomingMessage or ServerResponse (`takeStream`); every other connection goes on to Node's
 * server and then here, a stream request among them (its head split, say) served as before.
 *
 * Sockets: every connection is owned by socket-guard.ts from its `'connection'` (one error
 * handler, which only destroys it); an upgrade's socket, which Node hands on without any, is
 * owned again here before a handler sees it (a no-op for a socket already owned).
 */
@Injectable()
export class EdgeRouter implements OnApplicationBootstrap {
  private readonly logger = logger;
  private readonly handlers: { [K in EdgeKind]: Map<string, EdgeHandlers[K]> } = { stream: new Map(), rest: new Map(), upgrade: new Map() };
  private readonly fast: FastRest;
  private server?: Server;
  private others: RequestListener[] = [];

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    rateLimit: RestRateLimit,
    config: AppConfig,
    gate: StreamGate,
    @Optional() metrics?: MetricsService,
    @Optional() private readonly auth?: StreamAuth,
  ) {
    this.fast = new FastRest(rateLimit, config.corsOrigins, (req) => gate.clientIp(req.headers, req.socket.remoteAddress), metrics?.http);
  }

  /** Registers the handler of the rows that name it (before bootstrap: from a provider's constructor or onModuleInit). */
  serve<K extends EdgeKind>(kind: K, name: EdgeHandlerName<K>, handler: EdgeHandlers[K]): void {
    (this.handlers[kind] as Map<string, EdgeHandlers[K]>).set(name, handler);
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) return;
    this.server = server;
    // engine.io's upgrade listener (Socket.IO attached it while the gateways were created).
    const engine = server.listeners('upgrade') as UpgradeListener[];
    this.serve('upgrade', 'engine.io', (req, socket, head) => {
      for (const listener of engine) listener.call(server, req, socket, head);
    });
    this.others = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.removeAllListeners('upgrade');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.request(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    const door = installStreamDoor(server, server.headersTimeout, {
      claims: (path) => this.streamOf(path),
      take: (head, socket, stream) => this.takeStream(head, socket, stream),
    });
    if (door === 'unknown node') this.logger.warn({ msg: "stream requests go through Node's HTTP server: this Node's server is not the one expected", node: process.version });
    const missing = EDGE_ROUTES.filter((r) => !this.handlers[r.kind].has(r.handler)).map((r) => `${r.kind} ${r.path}`);
    if (missing.length > 0) this.logger.warn({ msg: 'edge routes without a handler go to Express', routes: missing });
  }

  /** The handler and row of a stream route's path, when one is registered. */
  private streamOf(path: string): { handler: EdgeHandlers['stream']; sse: SseRoute } | undefined {
    const route = edgeRoute(path, false);
    const handler = route?.kind === 'stream' ? this.handlers.stream.get(route.handler) : undefined;
    return handler && route?.sse ? { handler, sse: route.sse } : undefined;
  }

  /** A stream request the door (stream-door.ts) read off its connection: served on the socket, with no Node request or response. */
  private takeStream(head: RequestHead, socket: Socket, stream: { handler: EdgeHandlers['stream']; sse: SseRoute }): void {
    const req: StreamRequest = { method: head.method, url: head.url, headers: head.headers, socket };
    const res = new SocketResponse(socket);
    joins.add({ socket, run: () => stream.handler(req, res, stream.sse) });
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const route = req.method === 'GET' ? edgeRoute(pathOf(req.url), false) : undefined;
    if (route?.kind === 'stream') {
      const stream = this.handlers.stream.get(route.handler);
      const sse = route.sse;
      if (stream && sse) return joins.add({ socket: req.socket, run: () => stream(req, res, sse) });
    } else if (route?.kind === 'rest') {
      const handler = this.handlers.rest.get(route.handler);
      if (handler && this.auth?.restRequired) return this.restWithToken(this.auth, req, res, route, handler);
      if (handler && this.fast.serve(req, res, route, handler)) return;
    }
    this.toOthers(req, res);
  }

  /** AUTH_REQUIRED=all: the token checked first; a refusal is the fast route's error answer (or Express', when it declines the target). */
  private restWithToken(auth: StreamAuth, req: IncomingMessage, res: ServerResponse, route: EdgeRoute, handler: FastRestHandler): void {
    const serve = (h: FastRestHandler) => this.fast.serve(req, res, route, h) || this.toOthers(req, res);
    checkRest(auth, req).then(
      () => serve(handler),
      (err: unknown) =>
        serve(() => {
          throw err;
        }),
    );
  }

  private toOthers(req: IncomingMessage, res: ServerResponse): void {
    for (const listener of this.others) listener.call(this.server, req, res);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    ownSocket(socket);
    const route = upgradeRoute(req);
    const handler = route && this.handlers.upgrade.get(route.handler);
    if (route && handler) return joins.add({ socket, run: () => handler(req, socket, head, route) });
    serveWithoutUpgrade(this.server!, req, socket);
  }
}

/**
 * The upgrade row of a request: by its raw path (engine.io matches its prefix so), else by the
 * path as a URL parser reads it (dot segments resolved) for an exact row; `websocketOnly` rows
 * take `Upgrade: websocket` only (`h2c` and the like are plain requests).
 */
function upgradeRoute(req: IncomingMessage): EdgeRoute | undefined {
  let route = edgeRoute(pathOf(req.url), true);
  if (route === undefined) {
    const found = edgeRoute(urlPath(req.url), true);
    route = found?.match === 'exact' ? found : undefined;
  }
  return route?.websocketOnly && !isWebSocketUpgrade(req) ? undefined : route;
}

/** `Upgrade: websocket` (case-insensitive, possibly among other protocols). */
function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

/** The path of a request target, without the query. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function urlPath(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return '/';
  }
}

/**
 * The edge router and the REST rate limit it shares with ThrottlerGuard, for every module that
 * registers a handler (global: SseModule, PricesModule, WsModule).
 */
@Global()
@Module({})
export class EdgeModule {
  static forRoot(rateLimit: RestRateLimit): DynamicModule {
    return {
      module: EdgeModule,
      imports: [StreamModule],
      providers: [EdgeRouter, { provide: RestRateLimit, useValue: rateLimit }],
      exports: [EdgeRouter, RestRateLimit],
    };
  }
}
