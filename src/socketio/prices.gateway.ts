import { Logger } from '@nestjs/common';
import {
  Ack,
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
} from '@nestjs/websockets';
import { SkipThrottle } from '@nestjs/throttler';
import { toErrorBody } from '../http/api-exception.filter';
import { ApiError } from '../http/api-error';
import { authToken } from '../auth/credentials';
import { streamEnd } from '../auth/token-verifier';
import { AppConfig } from '../config/app-config';
import { StreamGate, type Lease } from '../stream/connection-registry';
import { EventRateLimiter } from '../stream/event-rate-limiter';
import { StreamHub, type Subscriber } from '../stream/stream-hub';
import { parseHandshakeAuth, parseSubscribe, parseUnsubscribe, type SubscribeCommand } from '../stream/subscribe-request';
import { SOCKET_NAMESPACE, type ConnectErrorData, type ErrorBody, type RefreshAck, type SubscribeAck, type UnsubscribeAck } from '../shared/wire';
import { TurnBatcher } from '../util/turn-batcher';
import { HandshakeSlots } from './handshake-slots';
import { PacketEncoder, SocketSink, type PricesNamespace, type PricesSocket } from './socket-sink';

const EVENTS = new Set(['subscribe', 'unsubscribe', 'refresh']);
type AnyAck = SubscribeAck | UnsubscribeAck | RefreshAck;

/** An engine.io connection (what a socket of any namespace runs on). */
type EngineSocket = PricesSocket['conn'];

type AckFn<T> = (res: T) => void;
const isAck = <T>(ack: unknown): ack is AckFn<T> => typeof ack === 'function';
const failure = (err: unknown): { ok: false; error: Pick<ErrorBody, 'code' | 'message'> } => {
  const { code, message } = toErrorBody(err);
  return { ok: false, error: { code, message } };
};

/** A middleware refusal: socket.io-client sees a `connect_error` whose `data` is `{code, message}`. */
function connectError(code: ConnectErrorData['code'], message: string): Error {
  return Object.assign(new Error(message), { data: { code, message } satisfies ConnectErrorData });
}

/**
 * Socket.IO namespace /prices. Thin: it validates what clients send and hands subscriptions to
 * the StreamHub through a SocketSink; fan-out, resume, slow clients, conflation and the close on
 * shutdown are the hub's.
 *
 * Every engine.io connection takes a connection slot at its handshake (HandshakeSlots; past the
 * caps the handshake is refused with 429), whatever namespace it then asks for, and holds it
 * until it closes: the caps and the subscribers gauge see them all. The root
 * namespace `/` is refused (`connect_error` INVALID_NAMESPACE) and its connection closed.
 *
 * `subscribe` and `unsubscribe` answer through the acknowledgement callback when there is one;
 * without one, errors arrive as a `notice` naming the event. A client that floods events past
 * twice SOCKET_EVENTS_PER_SECOND is disconnected for good.
 */
// The REST throttler guard only knows HTTP; sockets have their own event rate limit.
@SkipThrottle()
@WebSocketGateway({ namespace: SOCKET_NAMESPACE })
export class PricesGateway implements OnGatewayInit<PricesNamespace>, OnGatewayConnection<PricesSocket>, OnGatewayDisconnect<PricesSocket> {
  private readonly logger = new Logger(PricesGateway.name);
  /** Each engine.io connection's slot, granted at its handshake. */
  private readonly slots = new WeakMap<EngineSocket, Lease>();
  /** Connections with a /prices socket (a refused root namespace must not close them). */
  private readonly serving = new WeakSet<EngineSocket>();
  /** Refused connections, closed when the turn ends. */
  private readonly refused = new TurnBatcher<EngineSocket>((conns) => {
    for (const conn of conns) if (conn.readyState === 'open' && !this.serving.has(conn)) conn.close();
  });
  private encoder?: PacketEncoder;
  private ns?: PricesNamespace;

  constructor(
    private readonly hub: StreamHub,
    private readonly gate: StreamGate,
    private readonly config: AppConfig,
    private readonly handshakes: HandshakeSlots,
  ) {}

  /** The namespace (for operations and tests); undefined before the gateway is initialised. */
  get namespace(): PricesNamespace | undefined {
    return this.ns;
  }

  afterInit(ns: PricesNamespace): void {
    this.ns = ns;
    this.encoder = new PacketEncoder(ns.server.encoder, ns.name, Boolean(ns.server.engine.opts.perMessageDeflate));
    ns.server.engine.on('connection', (conn: EngineSocket) => this.admit(conn));
    ns.server.of('/').use((socket, next) => {
      next(connectError('INVALID_NAMESPACE', `connect to the ${SOCKET_NAMESPACE} namespace`));
      this.closeSoon(socket.conn);
    });
    ns.use((socket, next) => this.screenSocket(socket, next));
  }

  /** The /prices namespace middleware. */
  private screenSocket(socket: PricesSocket, next: (err?: Error) => void): void {
    const slot = this.slots.get(socket.conn);
    if (slot === undefined) {
      // Every connection got its slot at the handshake; one that has none is closed as it opens.
      next(connectError('SHUTTING_DOWN', 'the server is shutting down; reconnect shortly'));
      return this.closeSoon(socket.conn);
    }
    const refuse = (err: unknown) => {
      const { code, message } = toErrorBody(err);
      next(connectError(code, message));
    };
    let auto: SubscribeCommand | null;
    try {
      auto = parseHandshakeAuth(socket.handshake.auth, this.gate.limits, Date.now());
    } catch (err) {
      return refuse(err);
    }
    const admitted = () => {
      socket.data.limiter = new EventRateLimiter(this.config.socketEventsPerSecond);
      socket.use((packet, pass) => this.screen(socket, packet, pass));
      next();
    };
    if (!this.gate.auth.enabled) {
      // No AUTH_* key: nothing to verify, the connection goes on in this turn as it always did.
      socket.data.lease = slot;
      socket.data.auto = auto;
      return admitted();
    }
    this.authorize(socket, slot, auto).then(admitted, refuse);
  }

  /**
   * The handshake's `auth.token` (StreamAuth: 401 without one when AUTH_REQUIRED asks for it),
   * what it grants applied to the subscription `auth` asks for, and from then on the
   * connection's slot counted per `sub` (a new slot taken, the address' one given back).
   */
  private async authorize(socket: PricesSocket, slot: Lease, auto: SubscribeCommand | null): Promise<void> {
    const grant = await this.gate.auth.authorize('socketio', authToken(socket.handshake.auth));
    let lease = slot;
    if (grant) {
      auto = auto && this.gate.entitle('socketio', grant, auto, true);
      const rekeyed = await this.gate.rekey(slot, grant);
      // With workers the slot came from the primary: the client may have gone meanwhile.
      if (socket.conn.readyState !== 'open') {
        rekeyed.cancel();
        throw new ApiError(503, 'SHUTTING_DOWN', 'the connection closed');
      }
      this.slots.set(socket.conn, rekeyed);
      socket.conn.once('close', () => rekeyed.release('client'));
      lease = rekeyed;
    }
    socket.data.lease = lease;
    socket.data.auto = auto;
  }

  handleConnection(socket: PricesSocket): void {
    const slot = socket.data.lease;
    if (!this.encoder || slot === undefined) {
      socket.disconnect(true);
      return;
    }
    this.serving.add(socket.conn);
    const sink = new SocketSink(socket, this.encoder);
    this.hub.open(sink, slot, { requestId: socket.id });
    socket.data.sink = sink;
    // engine.io keeps the first HTTP request for the connection's life; its slot and handshake are taken from it by now (socket.io's memory advice).
    (socket.conn as { request: unknown }).request = null;
    this.logger.debug({ msg: 'stream opened', transport: 'socketio', socket: socket.id, ip: slot.ip, engine: socket.conn.transport.name });
    const auto = socket.data.auto;
    socket.data.auto = undefined;
    if (auto) this.subscribe(socket, sink, auto, undefined, 'auth');
  }

  handleDisconnect(socket: PricesSocket): void {
    const sink = socket.data.sink;
    if (!sink) return;
    sink.release();
    sink.subscriber.closed('client');
  }

  @SubscribeMessage('subscribe')
  onSubscribe(@ConnectedSocket() socket: PricesSocket, @MessageBody() body: unknown, @Ack() ack: unknown): void {
    const sink = socket.data.sink;
    if (!sink) return;
    let command: SubscribeCommand;
    try {
      command = this.gate.entitle('socketio', sink.subscriber.grant, parseSubscribe(body, this.gate.limits, Date.now()), false);
    } catch (err) {
      return this.reply(socket, ack, failure(err), 'subscribe');
    }
    this.subscribe(socket, sink, command, ack, 'subscribe');
  }

  @SubscribeMessage('unsubscribe')
  onUnsubscribe(@ConnectedSocket() socket: PricesSocket, @MessageBody() body: unknown, @Ack() ack: unknown): void {
    const sink = socket.data.sink;
    if (!sink) return;
    let res: UnsubscribeAck;
    try {
      res = { ok: true, pairs: sink.subscriber.unsubscribe(parseUnsubscribe(body, this.gate.limits)) };
    } catch (err) {
      res = failure(err);
    }
    this.reply(socket, ack, res, 'unsubscribe');
  }

  /** A new token for the same `sub` before the current one expires: the stream stays open until the new `exp`. */
  @SubscribeMessage('refresh')
  onRefresh(@ConnectedSocket() socket: PricesSocket, @MessageBody() body: unknown, @Ack() ack: unknown): void {
    const sink = socket.data.sink;
    if (!sink) return;
    void this.refresh(sink.subscriber, body).then((res) => this.reply(socket, ack, res, 'refresh'));
  }

  private async refresh(sub: Subscriber, body: unknown): Promise<RefreshAck> {
    try {
      const token = typeof body === 'object' && body !== null ? (body as { token?: unknown }).token : undefined;
      if (typeof token !== 'string') throw new ApiError(400, 'INVALID_PAYLOAD', 'refresh is {token}');
      if (sub.grant === undefined) throw new ApiError(401, 'UNAUTHORIZED', 'this stream was opened without a token: reconnect with one');
      const grant = await this.gate.auth.authorize('socketio', token, false);
      if (grant === null || grant.sub !== sub.grant.sub) throw new ApiError(401, 'UNAUTHORIZED', 'the token is for another subscriber');
      // The pairs the stream has must stay granted; the new token's conflate applies to later subscriptions.
      this.gate.auth.checkPairs(grant, sub.pairList());
      sub.grant = grant;
      sub.expireAt(streamEnd(grant));
      return { ok: true, expiresAt: new Date(grant.expiresAt).toISOString() };
    } catch (err) {
      return failure(err);
    }
  }

  /** Closes a refused connection that has no /prices socket, once its refusal packet is out (at the end of the turn). */
  private closeSoon(conn: EngineSocket): void {
    this.refused.add(conn);
  }

  /** Each engine.io connection takes over the slot its handshake was granted, and gives it back when it closes. */
  private admit(conn: EngineSocket): void {
    const lease = this.handshakes.claim(conn.request);
    if (lease === undefined) {
      this.logger.warn({ msg: 'engine.io connection without a handshake slot; closed', engine: conn.transport.name });
      conn.close();
      return;
    }
    // After socket.io's own close handling (registered as it saw the connection first), which closes the subscriber with its reason first.
    conn.once('close', () => lease.release('client'));
    this.slots.set(conn, lease);
  }

  private subscribe(socket: PricesSocket, sink: SocketSink, command: SubscribeCommand, ack: unknown, event: 'subscribe' | 'auth'): void {
    const sub = sink.subscriber;
    sub.useDeltas(command.delta);
    sub.subscribe(command.pairs, command.resume, command.conflateMs, {
      ready: (recovered) => this.reply(socket, ack, { ok: true, pairs: sub.pairList(), recovered }, event),
      failed: (err) => {
        this.logger.error({ msg: 'subscription failed', socket: socket.id, err });
        this.reply(socket, ack, failure(err), event);
      },
    });
  }

  /** The answer goes to the acknowledgement callback when there is one; without one, only an error is said, as a notice. */
  private reply(socket: PricesSocket, ack: unknown, res: AnyAck, event: string): void {
    // After the ticks written before it (the sink holds them until the turn ends).
    socket.data.sink?.flush();
    if (isAck<AnyAck>(ack)) return ack(res);
    if (!res.ok) socket.emit('notice', { ...res.error, event });
  }

  /**
   * Per-socket packet middleware: rate limit, and an error for events nobody handles. A
   * refused packet is dropped here (never `pass(err)`, which would only raise a server-side error).
   */
  private screen(socket: PricesSocket, packet: unknown[], pass: (err?: Error) => void): void {
    const event = typeof packet[0] === 'string' ? packet[0].slice(0, 32) : 'unknown';
    const ack = packet.length > 1 ? packet[packet.length - 1] : undefined;
    const verdict = socket.data.limiter?.hit(Date.now()) ?? 'ok';
    if (verdict === 'disconnect') {
      this.logger.warn({ msg: 'socket flooding events, disconnected', socket: socket.id });
      socket.data.sink?.subscriber.end('limit');
      return;
    }
    if (verdict === 'limited') {
      return this.reply(socket, ack, { ok: false, error: { code: 'RATE_LIMITED', message: `at most ${this.config.socketEventsPerSecond} events per second` } }, event);
    }
    if (!EVENTS.has(event)) {
      return this.reply(socket, ack, { ok: false, error: { code: 'INVALID_PAYLOAD', message: `unknown event; known: ${[...EVENTS].join(', ')}` } }, event);
    }
    pass();
  }
}
