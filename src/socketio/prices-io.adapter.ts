import { randomBytes } from 'node:crypto';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { defer, type Observable } from 'rxjs';
import type { Socket } from 'socket.io';
import { SOCKET_IO_PATH } from '../http/edge-routes';
import { originAllowed } from '../http/origin';
import type { AppConfig } from '../config/app-config';
import type { LifecycleService } from '../lifecycle/lifecycle.service';
import { HandshakeSlots, type HandshakeRequest } from './handshake-slots';
import { withoutOwnRooms } from './hub-adapter';

type IoServerOptions = NonNullable<Parameters<IoAdapter['createIOServer']>[1]>;

/** Subscribe requests are small; a client cannot make the server buffer more than this per packet. */
export const SOCKET_MAX_PACKET_BYTES = 16 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The Socket.IO server with settings that only exist at run time: CORS from CORS_ORIGINS, an
 * Origin check for WebSocket upgrades (which CORS does not cover), no new engine.io sessions
 * while the process shuts down, and a connection slot for each handshake (HandshakeSlots: 429
 * TOO_MANY_CONNECTIONS past the caps). These refusals are at the transport level (HTTP 403,
 * 429), which socket.io-client retries with backoff, so a client reaches the next instance by
 * itself; a namespace middleware refusal (connect_error) would stop its reconnection for good.
 */
export class PricesIoAdapter extends IoAdapter {
  private slots: HandshakeSlots | undefined;

  constructor(
    private readonly app: INestApplicationContext,
    private readonly config: AppConfig,
    private readonly lifecycle: LifecycleService,
    /** A worker's engine.io session ids start with it: the primary routes a polling session's requests back by it. */
    private readonly sessionPrefix?: string,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: IoServerOptions): ReturnType<IoAdapter['createIOServer']> {
    const origins = this.config.corsOrigins;
    // Nest types the options as complete; Socket.IO itself takes them partial and fills defaults.
    const ours: Partial<IoServerOptions> = {
      ...options,
      serveClient: false,
      path: SOCKET_IO_PATH,
      // An upgrade request for another path is not engine.io's to end (the edge router hands it elsewhere).
      destroyUpgrade: false,
      maxHttpBufferSize: SOCKET_MAX_PACKET_BYTES,
      // A connection holds a slot from its handshake; one that joins no namespace is closed after this.
      connectTimeout: CONNECT_TIMEOUT_MS,
      cors: origins.length === 0 ? undefined : { origin: origins.includes('*') ? true : [...origins], credentials: false },
      allowRequest: (req, callback) => {
        if (this.lifecycle.isShuttingDown) return callback('SHUTTING_DOWN', false);
        if (!originAllowed(req.headers.origin, req.headers.host, origins)) return callback('FORBIDDEN_ORIGIN', false);
        this.handshakeSlots().admit(req as HandshakeRequest, () => callback(null, true));
      },
    };
    const server = super.createIOServer(port, ours as IoServerOptions);
    withoutOwnRooms(server);
    releaseUpgradeRequests(server.engine);
    const prefix = this.sessionPrefix;
    // engine.io's own ids are 20 characters of base64url from 15 random bytes; the same after the prefix.
    if (prefix !== undefined) server.engine.generateId = () => prefix + randomBytes(15).toString('base64url');
    return server;
  }

  /** The gateway's module provides them; looked up once the first handshake comes (the adapter is made before the modules). */
  private handshakeSlots(): HandshakeSlots {
    const slots = this.slots ?? this.app.get(HandshakeSlots);
    if (!slots) throw new Error('HandshakeSlots is not provided (SocketIoModule)');
    this.slots = slots;
    return slots;
  }

  /**
   * Nest's IoAdapter builds an RxJS pipeline per socket and handler (fromEvent, mergeMap,
   * takeUntil a shared disconnect$): ~10 KB of closures and subscribers that every connection
   * keeps for its whole life. Here each handler is one listener, and RxJS lives only while a
   * message is handled. Same contract: the handler's result, when not null, is the
   * acknowledgement (or an `{event, data}` to emit); an error is logged and the socket keeps
   * its handlers. After a disconnect no message arrives, and an ack or emit is a no-op.
   */
  override bindMessageHandlers(socket: Socket, handlers: MessageMappingProperties[], transform: (data: unknown) => Observable<unknown>): void {
    for (const { message, callback, isAckHandledManually } of handlers) {
      socket.on(String(message), (...args: unknown[]) => {
        // As fromEvent emits them: none or one argument alone, several as an array (the ack is last).
        const { data, ack } = this.mapPayload(args.length > 1 ? args : args[0]);
        defer(() => transform(callback(data, ack))).subscribe({
          next: (response) => {
            if (response === null || response === undefined) return;
            const event = (response as { event?: unknown }).event;
            if (typeof event === 'string') socket.emit(event, (response as { data?: unknown }).data);
            else if (!isAckHandledManually && typeof ack === 'function') ack(response);
          },
          error: (err: unknown) => this.logger.error(err),
        });
      });
    }
  }
}

type Engine = ReturnType<IoAdapter['createIOServer']>['engine'];

/**
 * engine.io (6.6) answers a WebSocket upgrade with a stand-in response that holds the upgrade
 * request, and keeps that response for the connection's life (a 'close' listener on the TCP
 * socket that re-emits 'close' for middlewares): every WebSocket connection kept its upgrade
 * request (~2.5 KB: the IncomingMessage, its raw headers, engine.io's additions) whether or not
 * `conn.request` is dropped. The stand-in needs the request only for the headers middlewares
 * set (kept on the request itself), so this middleware, engine.io's only one (`engine.use`, its
 * public API), lets go of it: a direct WebSocket connection's request is then only
 * `conn.request`, which the gateway drops once the socket has its handshake, and an upgrade
 * from polling keeps none.
 */
function releaseUpgradeRequests(engine: Engine): void {
  engine.use((_req: IncomingMessage, res: unknown, next: () => void) => {
    if (!(res instanceof ServerResponse)) (res as { req: IncomingMessage | null }).req = null;
    next();
  });
}
