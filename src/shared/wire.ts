/**
 * The wire contract, defined once: imported by the REST controllers, the SSE controller,
 * the Socket.IO gateway, the WebSocket feed and the browser client (client/src).
 * Keep this file free of Node and Nest imports so the client can bundle it.
 */

export type SourceName = 'kraken' | 'coinbase' | 'coingecko' | 'coindesk' | 'simulated';

export type Tick = {
  /** `<milliseconds>-<sequence>`, strictly increasing across the whole stream. Opaque to clients. */
  id: string;
  /** Canonical `BASE-QUOTE`, e.g. `BTC-USD`. */
  pair: string;
  /** Finite, > 0. */
  price: number;
  /** ISO-8601: when this service retrieved the price. */
  timestamp: string;
  /** ISO-8601: the upstream's own time for the price, when it gives one. */
  sourceTimestamp?: string;
  source: SourceName;
};

/** Sent instead of the missed ticks when a resume point is older than the history window. */
export type ResetEvent = {
  reason: 'history_gap';
  /** The oldest id still in the window (null when the window is empty). */
  oldestId: string | null;
  oldestTimestamp: string | null;
};

export type ErrorCode =
  | 'INVALID_PAIR'
  | 'UNSUPPORTED_PAIR'
  | 'TOO_MANY_PAIRS'
  | 'NO_PRICE_YET'
  | 'INVALID_QUERY'
  | 'INVALID_LIMIT'
  | 'INVALID_RESUME_POINT'
  | 'RESUME_POINT_IN_FUTURE'
  | 'INVALID_PAYLOAD'
  | 'NOT_FOUND'
  | 'URI_TOO_LONG'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'TOO_MANY_CONNECTIONS'
  | 'UNAUTHORIZED'
  | 'SHUTTING_DOWN'
  | 'INTERNAL_ERROR';

/** The body of every error answer, REST or stream. */
export type ErrorBody = { statusCode: number; code: ErrorCode; message: string };

/** A resume point as clients send it: an event id, or a time (Unix s, Unix ms or ISO-8601). */
export type ResumeRequest = { lastEventId?: string; since?: string | number };

// ---- Socket.IO (namespace /prices) ----

export type SubscribeRequest = ResumeRequest & { pairs?: string[] | string };
export type UnsubscribeRequest = { pairs?: string[] | string };

export type SubscribeAck =
  | { ok: true; pairs: string[]; recovered: boolean }
  | { ok: false; error: { code: ErrorCode; message: string } };
export type UnsubscribeAck =
  | { ok: true; pairs: string[] }
  | { ok: false; error: { code: ErrorCode; message: string } };

/** The handshake `auth` a client may send so that a reconnect resubscribes and resumes by itself. */
export type HandshakeAuth = { pairs?: string[] | string; lastEventId?: string; since?: string | number };

export interface ServerToClientEvents {
  price: (tick: Tick) => void;
  reset: (reset: ResetEvent) => void;
}

export interface ClientToServerEvents {
  subscribe: (req: SubscribeRequest, ack: (res: SubscribeAck) => void) => void;
  unsubscribe: (req: UnsubscribeRequest, ack: (res: UnsubscribeAck) => void) => void;
}

// ---- Plain WebSocket (/api/ws) ----

export type WsMessage =
  | ({ type: 'price' } & Tick)
  | ({ type: 'reset' } & ResetEvent)
  | { type: 'error'; code: ErrorCode; message: string };

// ---- REST ----

export type PairInfo = { pair: string; latest: Tick | null; fresh: boolean };
export type PairsResponse = { pairs: PairInfo[] };
export type PairError = { pair: string; code: ErrorCode; message: string };
export type PricesResponse = { prices: Tick[]; errors?: PairError[] };
export type HistoryResponse = { pair: string; count: number; complete: boolean; updates: Tick[] };

export const SSE_PATH = '/api/prices/stream';
export const WS_PATH = '/api/ws';
export const SOCKET_NAMESPACE = '/prices';
