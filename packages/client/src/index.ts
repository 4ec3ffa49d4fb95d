/**
 * The price-stream client library: one `connect()` for every transport, with the service's
 * resume, de-duplication, order, reset handling, jittered backoff and permanent refusals built
 * in. No framework and no DOM types: it runs in a browser and in Node 22+ with nothing injected
 * (SSE over `fetch`, the global `WebSocket`; `socket.io-client` is loaded only for `socketio`).
 */
import { CONFLATE_MAX_MS, CONFLATE_MIN_MS, type PairStatus, type ResetEvent, type Transport } from '../../../src/shared/wire';
import { Connection, DEFAULT_TIMING, type ConnectionEnv, type ConnectionStatus, type ConnectionTiming } from './connection';
import { platformEnv } from './env';
import type { FeedFactory, FeedRequest, WebSocketConstructor } from './price-feed';
import { PriceStreamError } from './refusal';
import { ResumeTracker } from './resume-tracker';
import { createSocketIoFeed } from './socket-io.feed';
import { createSseFeed } from './sse.feed';
import type { Tick } from './types';
import { withToken, type GetToken } from './token';
import { createWebSocketFeed } from './websocket.feed';

export type { ErrorCode, PairStatus, ResetEvent, SourceName, TickSource, Transport } from '../../../src/shared/wire';
export type { Tick } from './types';
export type { ConnectionStatus, ConnectionTiming, ConnectionEnv } from './connection';
export type { WebSocketConstructor, WebSocketLike } from './price-feed';
export { TRANSPORT_LABELS } from './price-feed';
export { PriceStreamError, isPermanent, type ClientErrorCode, type Refusal } from './refusal';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy, type Jitter } from './backoff';
export { compareTickIds, isAfter } from './tick-order';
export type { GetToken } from './token';

export type ConnectOptions = {
  /** The service's origin, e.g. `http://localhost:8080` (in a browser: `location.origin`). */
  baseUrl: string;
  transport: Transport;
  /** Canonical pairs, e.g. `['BTC-USD', 'ETH-USD']`. */
  pairs: readonly string[];
  /** At most one tick per pair per this many ms (10–60000; 0: every tick), always the latest, with `skipped`. */
  conflate?: number;
  /**
   * Ask for deltas (docs/api.md "Deltas"): a tick then travels as what changed since its pair's
   * previous one, ~3x fewer bytes with the ticker fields. Applied here: `tick` gets full ticks as
   * without it. Default false.
   */
  delta?: boolean;
  /** Resume from here on the first connection (e.g. an id kept across page loads). */
  lastEventId?: string;
  /** The WebSocket class of the `websocket` transport; the platform's by default (browsers, Node 22+). */
  WebSocket?: WebSocketConstructor;
  /**
   * SSE: an open stream that sends nothing this long, not even the server's heartbeat (a comment
   * every 15 s by default), is taken for dead (a NAT that dropped it, a laptop that slept) and
   * the client reconnects and resumes. Default 45000 (three heartbeats); 0: never.
   */
  idleTimeoutMs?: number;
  /**
   * The subscriber token, for a service with AUTH_* (docs/api.md, "Tokens"): called before every
   * connection and reconnection (a stream ended with TOKEN_EXPIRED comes back with a new token
   * and resumes from the last id), and on Socket.IO before the token expires (sent as `refresh`,
   * the stream stays open).
   */
  getToken?: GetToken;
  /** Backoff and resume timing; tests shorten them. */
  timing?: Partial<ConnectionTiming>;
  /** Clock, randomness and network state; defaults to the platform's. */
  env?: ConnectionEnv;
};

export type PriceClientEvents = {
  /** A new tick, in order (ids increase across all pairs), never one already delivered. */
  price: (tick: Tick, receivedAt: number) => void;
  /** The server could not replay what was missed (history gap): the latest price of each pair follows. */
  reset: (reset: ResetEvent) => void;
  status: (status: ConnectionStatus) => void;
  /**
   * A pair's price went stale (every source of it failing: the last price is not current) or is
   * fresh again. Sent when it changes, and at once on a (re)connection while a pair is stale.
   */
  freshness: (status: PairStatus) => void;
  /** A reconnection resumed: this many missed ticks were replayed (already emitted as `price`). */
  resumed: (missed: number) => void;
  /**
   * Refused for good (`UNSUPPORTED_PAIR`, `INVALID_PAIR`, `FORBIDDEN_ORIGIN`, any 4xx but 408 and
   * 429, or a platform that lacks what the transport needs): the client has stopped retrying.
   */
  error: (error: PriceStreamError) => void;
};

/** The events `on()` takes; any other name is refused. */
export const CLIENT_EVENTS = ['price', 'reset', 'status', 'freshness', 'resumed', 'error'] as const satisfies readonly (keyof PriceClientEvents)[];

export type PriceClient = {
  /** Adds a listener; returns the function that removes it. An event name not in CLIENT_EVENTS throws. */
  on<E extends keyof PriceClientEvents>(event: E, listener: PriceClientEvents[E]): () => void;
  readonly transport: Transport;
  /** The id a reconnection resumes from; null before the first tick and after a reset. */
  readonly lastEventId: string | null;
  readonly status: ConnectionStatus;
  /**
   * Client clock minus the server's, learned from the ticks (the smallest recent arrival −
   * timestamp: the offset plus the fastest delivery); null before the first tick. The server's
   * time now is `Date.now() - serverClockOffsetMs`.
   */
  readonly serverClockOffsetMs: number | null;
  /** Connects (again) over this transport, resuming from the last id; also reopens a closed client. */
  use(transport: Transport): void;
  /** Closes the connection and stops reconnecting; `use()` opens it again. */
  close(): void;
};

const FEEDS: Record<Transport, FeedFactory> = { sse: createSseFeed, socketio: createSocketIoFeed, websocket: createWebSocketFeed };

/**
 * A request the server would refuse every time would only make the client retry forever, so
 * those are refused here, at once.
 */
function checkOptions({ pairs, conflate }: ConnectOptions): void {
  if (pairs.length === 0) throw new TypeError('connect: pairs must name at least one pair');
  if (conflate !== undefined && conflate !== 0 && !(Number.isInteger(conflate) && conflate >= CONFLATE_MIN_MS && conflate <= CONFLATE_MAX_MS)) {
    throw new RangeError(`connect: conflate must be 0 or whole milliseconds from ${CONFLATE_MIN_MS} to ${CONFLATE_MAX_MS}`);
  }
}

/** Connects at once (listeners added in the same tick see every event, the first `status` too). */
export function connect(options: ConnectOptions): PriceClient {
  checkOptions(options);
  const listeners: { [E in keyof PriceClientEvents]: Set<PriceClientEvents[E]> } = {
    price: new Set(),
    reset: new Set(),
    status: new Set(),
    freshness: new Set(),
    resumed: new Set(),
    error: new Set(),
  };
  const emit = <E extends keyof PriceClientEvents>(event: E, ...args: Parameters<PriceClientEvents[E]>): void => {
    for (const listener of listeners[event]) (listener as (...a: Parameters<PriceClientEvents[E]>) => void)(...args);
  };

  const tracker = new ResumeTracker(options.lastEventId ?? null);
  const pairs = [...options.pairs];
  let token: string | null = null;
  const request = (): FeedRequest => ({ pairs, lastEventId: tracker.lastId, conflate: options.conflate ?? null, delta: options.delta === true, token });
  const { getToken } = options;
  const keep = (next: string): void => {
    token = next;
  };
  let transport = options.transport;
  let status: ConnectionStatus = { state: 'connecting', attempt: 0 };
  const connection = new Connection(
    tracker,
    {
      status: (s) => {
        status = s;
        emit('status', s);
      },
      tick: (tick, at) => emit('price', tick, at),
      reset: (reset) => emit('reset', reset),
      pairStatus: (s) => emit('freshness', s),
      resumed: (missed) => emit('resumed', missed),
      failed: (refusal) => emit('error', new PriceStreamError(refusal, transport)),
    },
    options.env ?? platformEnv(),
    { ...DEFAULT_TIMING, ...options.timing },
  );
  const refreshToken =
    getToken &&
    (async (): Promise<string> => {
      const next = await getToken();
      keep(next);
      return next;
    });
  const feedOptions = { baseUrl: options.baseUrl, WebSocket: options.WebSocket, idleTimeoutMs: options.idleTimeoutMs, refreshToken };
  // Set once the caller chose for itself (use/close) before the deferred first connection.
  let decided = false;
  const use = (next: Transport): void => {
    decided = true;
    transport = next;
    const feed = FEEDS[next](request, feedOptions);
    connection.use(getToken ? withToken(feed, getToken, keep) : feed);
  };

  const client: PriceClient = {
    on(event, listener) {
      // Plain JavaScript can pass any name: a clear error, not a TypeError from a missing set.
      if (!Object.hasOwn(listeners, event)) throw new Error(`price-stream: no event "${String(event)}"; the events are ${CLIENT_EVENTS.join(', ')}`);
      if (typeof listener !== 'function') throw new TypeError(`price-stream: the listener of "${event}" must be a function`);
      const set = listeners[event] as Set<PriceClientEvents[typeof event]>;
      set.add(listener);
      return () => void set.delete(listener);
    },
    get transport() {
      return transport;
    },
    get lastEventId() {
      return tracker.lastId;
    },
    get status() {
      return status;
    },
    get serverClockOffsetMs() {
      return tracker.clockOffsetMs;
    },
    use,
    close: () => {
      decided = true;
      connection.stop();
    },
  };
  // The first status must reach listeners added right after connect() returns.
  queueMicrotask(() => decided || use(transport));
  return client;
}
