import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { toErrorBody } from '../http/api-exception.filter';
import { ApiError } from '../http/api-error';
import { originAllowed } from '../http/origin';
import { writeRawError } from '../http/raw-response';
import { EdgeRouter } from '../http/edge-router';
import type { EdgeRoute } from '../http/edge-routes';
import { searchParam } from '../http/query';
import { AppConfig } from '../config/app-config';
import { protocolToken } from '../auth/credentials';
import { StreamGate, type Lease, type Opened } from '../stream/connection-registry';
import { deltaShape, encoded, encodedPrice, WireShape } from '../stream/encoded';
import { EventRateLimiter } from '../stream/event-rate-limiter';
import { inSlices, WRITE_PACE } from '../util/sliced-pass';
import { TurnBatcher } from '../util/turn-batcher';
import { StreamHub, type DeltaMessage, type Sink, type StreamMessage, type Subscriber } from '../stream/stream-hub';
import { parseSubscribe, parseUnsubscribe, type SubscribeCommand } from '../stream/subscribe-request';
import { LEGACY_PAIR, LEGACY_WS_PATH, WS_BEARER_PREFIX, WS_CLOSE_SERVICE_RESTART, WS_CLOSE_TOKEN_EXPIRED, WS_PROTOCOL, WS_RETRY_PREFIX, legacyAsset, type DisconnectReason, type Tick, type WsDelta, type WsMessage } from '../shared/wire';

/** A subscribe or unsubscribe message is small; anything bigger closes the connection (1009). */
const MAX_CLIENT_MESSAGE_BYTES = 1024;

/** What the hub may have handed to `ws` and the kernel has not taken yet, before the hub holds the rest (Node's high-water mark). */
const BUFFERED_BYTES = 16 * 1024;

/** A tick's message in each shape, encoded once per tick by the stream core, whatever the number of WebSocket clients (`ws` frames a Buffer without copying it). */
const PRICE_SHAPES = [
  new WireShape('ws', (tick: Tick) => Buffer.from(JSON.stringify({ type: 'price', ...tick } satisfies WsMessage))),
  new WireShape('ws-legacy', (tick: Tick) => Buffer.from(JSON.stringify({ type: 'price', ...tick, ...legacyAsset(tick.pair) }))),
] as const;

/** A tick's delta (docs/api.md "Deltas"): the one message that is an array, `[id, pair, ...values]`; encoded once per tick. */
const DELTA_SHAPE = deltaShape('ws-delta', (m) => Buffer.from(JSON.stringify([m.tick.id, ...m.delta] satisfies WsDelta)));

function frameOf(message: StreamMessage | DeltaMessage, legacy: boolean): Buffer {
  if (message.type === 'delta') return encoded(message.tick, DELTA_SHAPE);
  if (message.type === 'reset') return Buffer.from(JSON.stringify({ type: 'reset', ...message.reset } satisfies WsMessage));
  if (message.type === 'status') return Buffer.from(JSON.stringify({ type: 'status', ...message.status } satisfies WsMessage));
  return encodedPrice(message, PRICE_SHAPES[legacy ? 1 : 0]);
}

/** Our query parameters: any of them on LEGACY_WS_PATH makes it our feed. */
const FEED_PARAMS = ['pairs', 'lastEventId', 'since', 'conflate', 'delta'] as const;

/** Close codes by why the server ends a connection. */
const CLOSE_CODES: Record<Exclude<DisconnectReason, 'slow'>, [number, string]> = {
  shutdown: [WS_CLOSE_SERVICE_RESTART, 'service restart; reconnect and resume'],
  limit: [1008, 'too many messages'],
  error: [1011, 'internal error'],
  client: [1000, 'closed'],
  expired: [WS_CLOSE_TOKEN_EXPIRED, 'TOKEN_EXPIRED'],
};

/**
 * The subprotocol to select: a client that offers its token as `bearer.<token>` gets `price-stream`
 * (it must offer it too); the token is never echoed. Otherwise `ws`' default, the first one offered.
 */
function selectProtocol(offered: Set<string>): string | false {
  const protocols = [...offered];
  if (!protocols.some((p) => p.startsWith(WS_BEARER_PREFIX))) return protocols[0] ?? false;
  return offered.has(WS_PROTOCOL) ? WS_PROTOCOL : false;
}

/**
 * Connections whose socket this feed corked in this event-loop turn: uncorked when the turn
 * ends, in slices like the SSE pass (util/sliced-pass.ts), so that a connection's frames of a
 * turn (a poll's ticks, a join's replay, the handshake's 101 with it) leave in one system call.
 */
const corked = new TurnBatcher<WsSink>((batch) => inSlices(batch, (sink) => sink.release(), WRITE_PACE));

/**
 * One connection as a hub Sink: `bufferedAmount` is its backlog in bytes, the write callback its drain.
 * Its socket is corked from the handshake (the feed corks it before `ws` writes the 101) until
 * the join's catch-up is written, and again by each turn that writes (see `corked`).
 */
class WsSink implements Sink {
  readonly transport = 'websocket' as const;
  subscriber!: Subscriber;

  bind(subscriber: Subscriber): void {
    this.subscriber = subscriber;
  }
  alive = true;
  /** Why the server dropped the connection itself (a dead peer), for the close that follows. */
  droppedFor: DisconnectReason | undefined;
  readonly limiter: EventRateLimiter;
  private readonly onFlushed = (err?: Error): void => {
    if (!err) this.subscriber.drained();
  };

  /** In `corked`, to be uncorked when this turn ends. */
  private queued = false;

  constructor(
    readonly ws: WebSocket,
    /** The upgraded socket, corked by the feed before the handshake was answered. */
    private readonly socket: Duplex,
    eventsPerSecond: number,
    /** The Bitcoin Price Streamer's shape (LEGACY_WS_PATH without a query): ticks with `symbol` and `name`. */
    private readonly legacy: boolean,
  ) {
    this.limiter = new EventRateLimiter(eventsPerSecond);
  }

  /** The join is done and its catch-up (if any) written into the corked socket: all of it leaves when the turn ends. */
  joined(): void {
    this.queue();
  }

  /** @internal The turn is over (or its writes passed 16 KiB): what it wrote leaves. */
  release(): void {
    this.queued = false;
    if (this.socket.writableCorked > 0) this.socket.uncork();
  }

  /** Corks the socket for the rest of the turn (no-op while it is held already). */
  private hold(): void {
    if (this.socket.writableCorked === 0) this.socket.cork();
    this.queue();
  }

  private queue(): void {
    if (this.queued) return;
    this.queued = true;
    corked.add(this);
  }

  write(message: StreamMessage | DeltaMessage): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    const frame = frameOf(message, this.legacy);
    // What the turn holds leaves before it passes 16 KiB (a replay, a burst: 16 KiB writes), so
    // that what the kernel does not take shows in `bufferedAmount` while they are written.
    if (this.ws.bufferedAmount + frame.length >= BUFFERED_BYTES) this.release();
    if (this.ws.bufferedAmount + frame.length < BUFFERED_BYTES) {
      this.hold();
      this.ws.send(frame, { binary: false });
      return true;
    }
    // This frame fills the buffer: once it is written, everything before it is too.
    this.ws.send(frame, { binary: false }, this.onFlushed);
    return false;
  }

  /** A slow client is terminated (a close frame would queue behind its backlog); the others get a close code. */
  end(reason: DisconnectReason, retryMs?: number): void {
    if (reason === 'slow') return this.ws.terminate();
    if (this.ws.readyState !== WebSocket.OPEN) return this.ws.terminate();
    if (reason === 'expired') this.send({ type: 'error', code: 'TOKEN_EXPIRED', message: 'the token has expired; reconnect with a new one and resume' });
    const [code, text] = CLOSE_CODES[reason];
    this.ws.close(code, reason === 'shutdown' && retryMs !== undefined ? `${text}; ${WS_RETRY_PREFIX}${retryMs}` : text);
    this.release(); // the close frame leaves now, with whatever this turn wrote before it
  }

  destroy(): void {
    this.ws.terminate();
  }

  send(message: WsMessage): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.hold();
    this.ws.send(JSON.stringify(message));
  }
}

/**
 * Plain WebSocket feed `GET /api/prices/ws?pairs=..&since=..&lastEventId=..&conflate=..&delta=..` on the app's
 * HTTP server, beside Socket.IO: the edge router hands it the `Upgrade: websocket` requests of its
 * `websocket` rows (edge-routes.ts). `/api/ws` (LEGACY_WS_PATH) with one of those parameters is the same
 * feed; without any it is the Bitcoin Price Streamer's: BTC-USD ticks with `symbol` and `name`.
 * On an open connection the client may send
 * `{"type":"subscribe","pairs":[..],"lastEventId"?,"since"?,"conflate"?,"delta"?}` and
 * `{"type":"unsubscribe","pairs":[..]}`, answered with `subscribed` / `unsubscribed` or `error`.
 *
 * Refusals (bad query, foreign Origin, too many connections, shutdown) happen before the upgrade:
 * an HTTP status and an ErrorBody, like SSE's 4xx, and no socket is spent on them. Browsers
 * cannot read that status (they see close 1006); the REST routes give the same errors to check.
 *
 * Ticks, resume, slow clients, conflation and shutdown are the hub's (StreamHub); a slow client
 * is terminated and resumes from its last id. Dead peers: a ping every HEARTBEAT_INTERVAL_MS,
 * terminated when the previous one got no pong. Shutdown: close 1012 (service restart).
 */
@Injectable()
export class PriceWsFeed implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(PriceWsFeed.name);
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: false, handleProtocols: selectProtocol });
  private readonly sinks = new Set<WsSink>();
  private heartbeat?: NodeJS.Timeout;

  constructor(
    router: EdgeRouter,
    private readonly hub: StreamHub,
    private readonly gate: StreamGate,
    private readonly config: AppConfig,
  ) {
    router.serve('upgrade', 'websocket', (req, socket, head, route) => this.upgrade(req, socket, head, route));
  }

  onApplicationBootstrap(): void {
    this.heartbeat = setInterval(() => this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** The hub has closed the streams by now (its shutdown hook); an upgrade after it is refused by the gate (SHUTTING_DOWN). */
  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
  }

  /** An `Upgrade: websocket` request for WS_PATH or LEGACY_WS_PATH (`route`), its socket owned by the edge router. */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: EdgeRoute): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    const legacy = route.path === LEGACY_WS_PATH && !FEED_PARAMS.some((name) => url.searchParams.has(name));
    let opening: Promise<Opened>;
    try {
      if (!originAllowed(req.headers.origin, req.headers.host, this.config.corsOrigins)) {
        throw new ApiError(403, 'FORBIDDEN_ORIGIN', 'this origin may not open streams here');
      }
      const param = (name: string) => searchParam(url.searchParams, name);
      opening = this.gate.open(
        'websocket',
        { pairs: param('pairs'), lastEventId: param('lastEventId'), since: param('since'), conflate: param('conflate'), delta: param('delta') },
        this.gate.clientIp(req.headers, req.socket.remoteAddress),
        legacy ? LEGACY_PAIR : undefined,
        url.searchParams.get('token') ?? protocolToken(req.headers),
      );
    } catch (err) {
      return writeRawError(socket, toErrorBody(err));
    }
    opening.then(
      ({ command, lease }) => {
        // With workers the slot came from the primary: the client may have gone meanwhile.
        if (socket.destroyed) return lease.cancel();
        // ws answers a malformed handshake itself and never calls back: the slot is freed here then.
        let attached = false;
        socket.once('close', () => {
          if (!attached) lease.release('error');
        });
        // The 101 waits in the socket for the join's catch-up: one write for both (WsSink.joined).
        // A handshake ws refuses ends the socket, which uncorks it.
        socket.cork();
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          attached = true;
          this.attach(ws, socket, command, lease, legacy);
        });
      },
      (err: unknown) => writeRawError(socket, toErrorBody(err)),
    );
  }

  private attach(ws: WebSocket, socket: Duplex, command: SubscribeCommand, lease: Lease, legacy: boolean): void {
    const sink = new WsSink(ws, socket, this.config.socketEventsPerSecond, legacy);
    const sub = this.hub.open(sink, lease);
    this.sinks.add(sink);
    ws.on('pong', () => (sink.alive = true));
    ws.on('error', (err) => this.logger.debug({ msg: 'WebSocket error', ip: lease.ip, err: err.message }));
    ws.on('message', (data, isBinary) => this.onMessage(sink, data, isBinary));
    ws.on('close', () => {
      this.sinks.delete(sink);
      sub.closed(sink.droppedFor ?? 'client');
    });
    this.logger.debug({ msg: 'stream opened', transport: 'websocket', ip: lease.ip, pairs: command.pairs, resume: command.resume?.kind ?? 'none', conflateMs: command.conflateMs });
    sub.useDeltas(command.delta);
    sub.subscribe(command.pairs, command.resume, command.conflateMs, {
      ready: () => sink.joined(),
      failed: (err) => {
        this.logger.error({ msg: 'WebSocket stream failed to resume', ip: lease.ip, err });
        sub.end('error');
      },
    });
  }

  /** `subscribe` / `unsubscribe` messages on an open connection; every refusal is an `error` message. */
  private onMessage(sink: WsSink, data: RawData, isBinary: boolean): void {
    const sub = sink.subscriber;
    const verdict = sink.limiter.hit(Date.now());
    if (verdict === 'disconnect') return sub.end('limit');
    let type: string | undefined;
    try {
      if (verdict === 'limited') throw new ApiError(429, 'RATE_LIMITED', `at most ${this.config.socketEventsPerSecond} messages per second`);
      let body: unknown;
      try {
        body = isBinary ? undefined : JSON.parse(String(data));
      } catch {
        body = undefined;
      }
      const t = typeof body === 'object' && body !== null ? (body as { type?: unknown }).type : undefined;
      type = typeof t === 'string' ? t.slice(0, 32) : undefined;
      if (type === 'subscribe') {
        const command = this.gate.entitle('websocket', sub.grant, parseSubscribe(body, this.gate.limits, Date.now(), ['type']), false);
        sub.useDeltas(command.delta);
        sub.subscribe(command.pairs, command.resume, command.conflateMs, {
          ready: (recovered) => sink.send({ type: 'subscribed', pairs: sub.pairList(), recovered }),
          failed: (err) => sink.send(errorMessage(err, 'subscribe')),
        });
      } else if (type === 'unsubscribe') {
        sink.send({ type: 'unsubscribed', pairs: sub.unsubscribe(parseUnsubscribe(body, this.gate.limits, ['type'])) });
      } else {
        throw new ApiError(400, 'INVALID_PAYLOAD', 'a message is JSON {"type":"subscribe"|"unsubscribe", "pairs": [...]}');
      }
    } catch (err) {
      sink.send(errorMessage(err, type));
    }
  }

  private beat(): void {
    for (const sink of this.sinks) {
      if (!sink.alive) {
        this.logger.debug({ msg: 'WebSocket peer missed a pong, terminated', ip: sink.subscriber.lease.ip });
        sink.droppedFor = 'error';
        sink.destroy();
        continue;
      }
      sink.alive = false;
      sink.ws.ping();
    }
  }
}

function errorMessage(err: unknown, request: string | undefined): WsMessage {
  const { code, message } = toErrorBody(err);
  return request === undefined ? { type: 'error', code, message } : { type: 'error', code, message, request };
}

