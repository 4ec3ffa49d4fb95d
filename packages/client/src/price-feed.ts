import type { PairStatus, ResetEvent, Transport } from '../../../src/shared/wire';
import type { Refusal } from './refusal';
import type { Tick } from './types';

/** The transports' names are the wire contract's, the same as the server's metrics and logs. */
export type TransportKind = Transport;

export const TRANSPORT_LABELS: Record<TransportKind, string> = {
  sse: 'Server-Sent Events',
  socketio: 'Socket.IO',
  websocket: 'WebSocket',
};

/** What a connection asks for; read afresh on every (re)connect so that it resumes from the last id. */
export type FeedRequest = {
  pairs: readonly string[];
  lastEventId: string | null;
  conflate: number | null;
  /** Ask for deltas (docs/api.md "Deltas"); the feed applies them and hands on full ticks. */
  delta?: boolean;
  /** The subscriber token (`getToken`): SSE's Authorization header, the WebSocket subprotocol `bearer.<token>`, Socket.IO's `auth.token`. */
  token?: string | null;
};

/** The part of a WebSocket the library uses: the browser's, Node 22's, or the `ws` package's. */
export type WebSocketLike = {
  readonly readyState: number;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: object) => void): void;
  close(code?: number): void;
};
export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike;

/** The part of `fetch` the library uses (the platform's; tests pass their own). */
export type FetchLike = (url: string, init: { headers: Record<string, string>; signal: AbortSignal; cache: 'no-store' }) => Promise<Response>;

/** Where and how a feed connects. The platform's globals unless given. */
export type FeedOptions = {
  /** The service's origin, e.g. `http://localhost:8080` (a path after it is ignored). */
  baseUrl: string;
  fetch?: FetchLike;
  WebSocket?: WebSocketConstructor;
  /** SSE: a stream that sends nothing this long (not even the server's heartbeat) is taken for dead; 0: never. */
  idleTimeoutMs?: number;
  /** Socket.IO: a new token from the app (kept for the next connection too), sent as `refresh` before the current one expires. */
  refreshToken?: () => Promise<string>;
};

/** The headers of an SSE request (also the WebSocket feed's probe of a refusal). */
export function sseHeaders(req: FeedRequest): Record<string, string> {
  return !req.token ? { Accept: 'text/event-stream' } : { Accept: 'text/event-stream', Authorization: `Bearer ${req.token}` };
}

export type FeedHandlers = {
  /** The server accepted the subscription; ticks follow. */
  open(): void;
  tick(tick: Tick): void;
  reset(reset: ResetEvent): void;
  /** A pair's price went stale, or is fresh again. */
  pairStatus(status: PairStatus): void;
  /**
   * The connection is gone (or never came up). Called at most once per `start`. `refusal`: what
   * the server (or the platform) said, when anything; Connection decides whether to retry.
   * `retryMs`: the server's reconnect hint as it ended the stream (a shutdown: SSE `retry:`, the
   * WebSocket 1012's `retry=`, Socket.IO's SHUTTING_DOWN `retryMs`), each stream its own delay.
   */
  closed(reason: string, refusal?: Refusal, retryMs?: number): void;
};

/**
 * One transport. A feed only connects and translates the wire into handler calls: reconnecting,
 * backoff, resume and de-duplication live in Connection, the same for every transport, so no
 * transport's own reconnect is used.
 */
export interface PriceFeed {
  readonly kind: TransportKind;
  start(handlers: FeedHandlers): void;
  /** Closes the connection without calling `closed`. Safe to call at any time. */
  stop(): void;
}

export type FeedFactory = (request: () => FeedRequest, options: FeedOptions) => PriceFeed;

/** The stream URL of a transport with the request's pairs, resume point and conflation in the query. */
export function streamUrl(baseUrl: string, path: string, { pairs, lastEventId, conflate, delta }: FeedRequest): URL {
  const url = new URL(path, baseUrl);
  url.searchParams.set('pairs', pairs.join(','));
  if (lastEventId !== null) url.searchParams.set('lastEventId', lastEventId);
  if (conflate !== null) url.searchParams.set('conflate', String(conflate));
  if (delta) url.searchParams.set('delta', '1');
  return url;
}

/**
 * A field of an event (`data` of a message, `code` of a close, `message` of an error). The event
 * types differ between the browser, Node and `ws`, so the library reads only what it needs.
 */
export function eventField(event: object, name: 'data' | 'code' | 'message' | 'reason'): unknown {
  return name in event ? (event as Record<string, unknown>)[name] : undefined;
}

/** A global (fetch, WebSocket) when the platform has one; the library never needs a DOM type. */
export function platformGlobal<T>(name: 'fetch' | 'WebSocket'): T | undefined {
  return (globalThis as Record<string, unknown>)[name] as T | undefined;
}
