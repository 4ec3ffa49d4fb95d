import { Logger, Optional, type BeforeApplicationShutdown } from '@nestjs/common';
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
import { toErrorBody } from '../common/api-exception.filter';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { clientIp, ConnectionRegistry } from '../stream/connection-registry';
import { PriceStreamService } from '../stream/price-stream.service';
import { SOCKET_NAMESPACE, type ConnectErrorData, type ErrorBody, type SubscribeAck, type UnsubscribeAck } from '../shared/wire';
import { EventRateLimiter } from './event-rate-limiter';
import { PriceRooms, type PricesNamespace, type PricesSocket, type SocketSession } from './price-rooms';
import { parseHandshakeAuth, parseSubscribe, parseUnsubscribe, type PayloadLimits, type SubscribeCommand } from './prices-payload';

const EVENTS = new Set(['subscribe', 'unsubscribe']);

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
 * Socket.IO namespace /prices. Thin: it validates what clients send, takes the connection
 * slot, and hands subscriptions to PriceRooms, which owns fan-out and resume hand-over.
 *
 * Server-side endings: shutdown emits a `notice` {code:SHUTTING_DOWN} and closes the transport
 * (socket.io-client reconnects by itself on "transport close" and resumes through its auth
 * callback, whereas `disconnect(true)` would stop it from reconnecting); a slow consumer's
 * transport is closed without flushing (it reconnects and resumes the same way); a client that
 * floods events past twice SOCKET_EVENTS_PER_SECOND is disconnected for good (`disconnect(true)`).
 */
// The REST throttler guard only knows HTTP; sockets have their own event rate limit.
@SkipThrottle()
@WebSocketGateway({ namespace: SOCKET_NAMESPACE })
export class PricesGateway implements OnGatewayInit<PricesNamespace>, OnGatewayConnection<PricesSocket>, OnGatewayDisconnect<PricesSocket>, BeforeApplicationShutdown {
  private readonly logger = new Logger(PricesGateway.name);
  private readonly limits: PayloadLimits;
  private ns?: PricesNamespace;
  private rooms?: PriceRooms;

  constructor(
    private readonly stream: PriceStreamService,
    private readonly registry: ConnectionRegistry,
    private readonly lifecycle: LifecycleService,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    this.limits = { pairs: config.pairSet, maxPairs: config.maxPairsPerRequest };
  }

  /** The namespace (for operations and tests); undefined before the gateway is initialised. */
  get namespace(): PricesNamespace | undefined {
    return this.ns;
  }

  afterInit(ns: PricesNamespace): void {
    this.ns = ns;
    this.rooms = new PriceRooms(ns, this.stream, this.config, () => void this.closeAll('the price stream ended'), this.metrics);
    this.rooms.start();
    ns.use((socket, next) => {
      if (this.lifecycle.isShuttingDown) return next(connectError('SHUTTING_DOWN', 'the server is shutting down; reconnect shortly'));
      let auto: SubscribeCommand | null;
      try {
        auto = parseHandshakeAuth(socket.handshake.auth, this.limits, Date.now());
      } catch (err) {
        const { code, message } = toErrorBody(err);
        return next(connectError(code, message));
      }
      const ip = clientIp(socket.handshake.headers, socket.conn.remoteAddress, this.config.trustProxy);
      let session: SocketSession;
      try {
        session = { lease: this.registry.acquire('socketio', ip), limiter: new EventRateLimiter(this.config.socketEventsPerSecond), owners: new Map(), replays: new Set(), grace: 0 };
      } catch (err) {
        const { code, message } = toErrorBody(err);
        return next(connectError(code, message));
      }
      socket.data.session = session;
      // A client gone between this middleware and the connection never gets 'disconnect'.
      socket.conn.once('close', () => session.lease.release(session.endReason ?? 'client'));
      socket.use((packet, pass) => this.screen(socket, session, packet, pass));
      socket.data.auto = auto;
      next();
    });
  }

  handleConnection(socket: PricesSocket): void {
    const { session, auto } = socket.data;
    if (!session) {
      socket.disconnect(true);
      return;
    }
    this.logger.debug({ msg: 'stream opened', transport: 'socketio', socket: socket.id, ip: session.lease.ip, engine: socket.conn.transport.name });
    socket.data.auto = undefined;
    if (auto) {
      this.rooms?.subscribe(
        socket,
        session,
        auto,
        () => undefined,
        (err) => socket.emit('notice', { ...failure(err).error, event: 'auth' }),
      );
    }
  }

  handleDisconnect(socket: PricesSocket, reason?: string): void {
    const session = socket.data.session;
    if (!session) return;
    this.rooms?.release(session);
    session.lease.release(session.endReason ?? 'client');
    this.logger.debug({ msg: 'stream closed', transport: 'socketio', socket: socket.id, reason: session.endReason ?? 'client', detail: reason });
  }

  @SubscribeMessage('subscribe')
  onSubscribe(@ConnectedSocket() socket: PricesSocket, @MessageBody() body: unknown, @Ack() ack: unknown): void {
    const session = socket.data.session;
    if (!session || !this.rooms) return;
    if (!isAck<SubscribeAck>(ack)) return this.noAck(socket, 'subscribe');
    let command: SubscribeCommand;
    try {
      command = parseSubscribe(body, this.limits, Date.now());
    } catch (err) {
      return ack(failure(err));
    }
    const rooms = this.rooms;
    rooms.subscribe(
      socket,
      session,
      command,
      (recovered) => ack({ ok: true, pairs: rooms.subscribedPairs(session), recovered }),
      (err) => {
        this.logger.error({ msg: 'subscription failed', socket: socket.id, err });
        ack(failure(err));
      },
    );
  }

  @SubscribeMessage('unsubscribe')
  onUnsubscribe(@ConnectedSocket() socket: PricesSocket, @MessageBody() body: unknown, @Ack() ack: unknown): void {
    const session = socket.data.session;
    if (!session || !this.rooms) return;
    if (!isAck<UnsubscribeAck>(ack)) return this.noAck(socket, 'unsubscribe');
    try {
      const pairs = parseUnsubscribe(body, this.limits);
      ack({ ok: true, pairs: this.rooms.unsubscribe(socket, session, pairs) });
    } catch (err) {
      ack(failure(err));
    }
  }

  /** Closes every socket with a reconnect hint; resolves when they are closed or after a bound. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.closeAll('shutdown');
    this.rooms?.stop();
  }

  /**
   * Per-socket packet middleware: rate limit, and an error ack for events nobody handles. A
   * refused packet is dropped here (never `pass(err)`, which would only raise a server-side error).
   */
  private screen(socket: PricesSocket, session: SocketSession, packet: unknown[], pass: (err?: Error) => void): void {
    const ack = packet.length > 1 ? packet[packet.length - 1] : undefined;
    const verdict = session.limiter.hit(Date.now());
    if (verdict === 'disconnect') {
      if (!session.endReason) {
        session.endReason = 'limit';
        this.logger.warn({ msg: 'socket flooding events, disconnected', socket: socket.id, ip: session.lease.ip });
        socket.emit('notice', { code: 'RATE_LIMITED', message: 'too many events; disconnected' });
        socket.disconnect(true);
      }
      return;
    }
    if (verdict === 'limited') {
      if (isAck<SubscribeAck>(ack)) ack({ ok: false, error: { code: 'RATE_LIMITED', message: `at most ${this.config.socketEventsPerSecond} events per second` } });
      return;
    }
    const event = packet[0];
    if (typeof event !== 'string' || !EVENTS.has(event)) {
      if (isAck<SubscribeAck>(ack)) ack({ ok: false, error: { code: 'INVALID_PAYLOAD', message: `unknown event; known: ${[...EVENTS].join(', ')}` } });
      return;
    }
    pass();
  }

  private noAck(socket: PricesSocket, event: string): void {
    socket.emit('notice', { code: 'INVALID_PAYLOAD', message: `${event} needs an acknowledgement callback`, event });
  }

  private async closeAll(why: string): Promise<void> {
    const ns = this.ns;
    if (!ns || ns.sockets.size === 0) return;
    this.logger.log({ msg: 'closing sockets with a reconnect hint', why, sockets: ns.sockets.size });
    const closed: Promise<void>[] = [];
    for (const socket of ns.sockets.values()) {
      const session = socket.data.session;
      if (session && !session.endReason) session.endReason = 'shutdown';
      socket.emit('notice', { code: 'SHUTTING_DOWN', message: 'the server is restarting; reconnect and resume' });
      closed.push(new Promise((resolve) => socket.conn.once('close', () => resolve())));
      socket.conn.close();
    }
    const bound = Math.min(2000, this.config.shutdownTimeoutMs / 2);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => (timer = setTimeout(resolve, bound)))]);
    clearTimeout(timer);
  }
}
