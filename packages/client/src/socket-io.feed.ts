import type { Socket } from 'socket.io-client';
import { SOCKET_NAMESPACE, type ClientToServerEvents, type HandshakeAuth, type ServerToClientEvents } from '../../../src/shared/wire';
import type { FeedFactory, FeedHandlers, PriceFeed } from './price-feed';
import { errorFields, type Refusal } from './refusal';
import { refreshDelay, tokenExpiry } from './token';
import { asPairStatus, asReset, asTick } from './wire-guards';
import { DELTA_WITHOUT_BASE, DeltaBook } from './delta-book';

type SocketIoClient = typeof import('socket.io-client');
type PricesSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

let loading: Promise<SocketIoClient> | undefined;

/**
 * socket.io-client is an optional peer dependency: loaded the first time a Socket.IO feed
 * starts, so that a program on SSE or WebSocket needs nothing else installed.
 */
export function loadSocketIoClient(load: () => Promise<SocketIoClient> = () => import('socket.io-client')): Promise<SocketIoClient> {
  loading ??= load().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

const MISSING: Refusal = {
  code: 'SOCKET_IO_CLIENT_MISSING',
  status: null,
  message: 'the socketio transport needs the socket.io-client package: npm install socket.io-client',
};

/**
 * What a `connect_error` says. The namespace's refusals (a bad subscription, the connection
 * caps) carry `data: {code, message}`. A refusal by the engine.io handshake (origin, shutdown)
 * is an HTTP 403 whose JSON body names the code as its `message`, readable on long-polling.
 */
export function connectRefusal(err: unknown): Refusal | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const fields = errorFields((err as { data?: unknown }).data);
  if (fields) return { ...fields, status: null };
  const { description, context } = err as { description?: unknown; context?: unknown };
  const text = typeof context === 'object' && context !== null ? (context as { responseText?: unknown }).responseText : undefined;
  if (typeof description !== 'number' || typeof text !== 'string') return undefined;
  try {
    const body = JSON.parse(text) as { message?: unknown };
    // engine.io's own codes are numbers; the service's refusal is its message.
    if (typeof body.message === 'string' && /^[A-Z_]+$/.test(body.message)) return { code: body.message, status: null, message: `refused by the server: ${body.message}` };
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * Socket.IO on namespace /prices. The subscription and the resume point travel in the handshake
 * `auth` (read through a callback, so every connection carries the latest id). The manager's own
 * reconnection is off: Connection reconnects every transport the same way.
 */
export const createSocketIoFeed: FeedFactory = (request, options) => {
  let socket: PricesSocket | null = null;
  /** Bumped on every start and stop: a load that ends after them starts nothing. */
  let attempt = 0;
  /** The refresh of the current socket's token, due before it expires. */
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;

  const feed: PriceFeed = {
    kind: 'socketio',
    start(handlers: FeedHandlers) {
      feed.stop();
      const mine = ++attempt;
      loadSocketIoClient().then(
        ({ io }) => {
          if (attempt === mine) connectWith(io, handlers);
        },
        (err: unknown) => {
          if (attempt === mine) handlers.closed(`could not load socket.io-client: ${err instanceof Error ? err.message : String(err)}`, MISSING);
        },
      );
    },
    stop() {
      attempt += 1;
      clearTimeout(refreshTimer);
      const s = socket;
      socket = null;
      s?.removeAllListeners();
      s?.disconnect();
    },
  };

  const connectWith = (io: SocketIoClient['io'], handlers: FeedHandlers): void => {
    const s: PricesSocket = io(new URL(SOCKET_NAMESPACE, options.baseUrl).href, {
      forceNew: true,
      reconnection: false,
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      auth: (cb) => {
        const { pairs, lastEventId, conflate, delta, token } = request();
        const auth: HandshakeAuth = {
          pairs: [...pairs],
          ...(lastEventId !== null ? { lastEventId } : {}),
          ...(conflate !== null ? { conflate } : {}),
          ...(delta ? { delta: true } : {}),
          ...(token ? { token } : {}),
        };
        cb(auth);
      },
    });
    socket = s;
    const live = (): boolean => socket === s;
    const close = (reason: string, refusal?: Refusal, retryMs?: number): void => {
      if (!live()) return;
      feed.stop();
      handlers.closed(reason, refusal, retryMs);
    };
    /** The server's SHUTTING_DOWN notice names this socket's own reconnect delay, for the disconnect that follows. */
    let hint: number | undefined;
    /**
     * Before the token expires, a new one from the app goes as `refresh`: the stream stays open.
     * Should that fail, the server ends the stream with TOKEN_EXPIRED and the reconnection asks
     * the app again.
     */
    const scheduleRefresh = (token: string | null | undefined): void => {
      clearTimeout(refreshTimer);
      const refreshToken = options.refreshToken;
      const expiresAt = token ? tokenExpiry(token) : null;
      if (!refreshToken || expiresAt === null) return;
      refreshTimer = setTimeout(() => {
        void refreshToken().then(
          (next) => {
            if (!live()) return;
            s.emit('refresh', { token: next }, (ack) => {
              // Refused (a limit, a token the server did not take): tried again while the stream lasts.
              if (live()) scheduleRefresh(ack.ok ? next : token);
            });
          },
          () => live() && scheduleRefresh(token),
        );
      }, refreshDelay(expiresAt, Date.now()));
    };
    s.on('connect', () => {
      if (!live()) return;
      scheduleRefresh(request().token);
      handlers.open();
    });
    const book = new DeltaBook();
    s.on('price', (t) => {
      const tick = live() ? asTick(t) : null;
      if (tick) handlers.tick(book.full(tick));
    });
    s.on('d', (id, ...delta) => {
      if (!live()) return;
      const tick = book.apply(id, delta);
      if (tick) handlers.tick(tick);
      else close(DELTA_WITHOUT_BASE);
    });
    s.on('status', (v) => {
      const status = live() ? asPairStatus(v) : null;
      if (status) handlers.pairStatus(status);
    });
    s.on('reset', (r) => {
      const reset = live() ? asReset(r) : null;
      book.clear();
      if (reset) handlers.reset(reset);
    });
    // The subscription the handshake asked for failed after the connection (its resume point):
    // nothing will come on this socket, so it ends like a refusal (Connection decides the retry).
    s.on('notice', (n) => {
      if (n.event === 'auth') close(`subscription refused: ${n.code}: ${n.message}`, { code: n.code, status: null, message: n.message });
      else if (n.code === 'SHUTTING_DOWN' && typeof n.retryMs === 'number' && Number.isFinite(n.retryMs) && n.retryMs >= 0) hint = n.retryMs;
    });
    s.on('connect_error', (err) => close(`could not connect: ${err.message}`, connectRefusal(err)));
    s.on('disconnect', (reason) => close(`disconnected: ${reason}`, undefined, hint));
  };
  return feed;
};
