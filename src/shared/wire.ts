import type { TickDelta } from './tick-delta';

export type { TickDelta } from './tick-delta';

/**
 * The wire contract, defined once: imported by the REST controllers, the SSE controller,
 * the Socket.IO gateway, the WebSocket feed and the browser client (client/src).
 * Keep this file free of Node and Nest imports so the client can bundle it.
 */

/**
 * Every upstream, defined once: the config (PRICE_SOURCES), the source registry, the OpenAPI
 * document and the client's tick guard all derive from this list.
 */
export const SOURCE_NAMES = ['kraken', 'coinbase', 'coingecko', 'coindesk', 'simulated'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

/** A tick's `source`: one upstream, or `composite` (PRICE_MODE=median) with `sources` listed. */
export const TICK_SOURCES = [...SOURCE_NAMES, 'composite'] as const;
export type TickSource = (typeof TICK_SOURCES)[number];

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
  source: TickSource;
  /** With `source: "composite"` (PRICE_MODE=median): the upstreams whose prices made it. */
  sources?: SourceName[];
  /** Best bid and ask, where the upstream gives them. */
  bid?: number;
  ask?: number;
  /** The last 24 hours, where the upstream gives them (see docs/api.md for each source). */
  open24h?: number;
  high24h?: number;
  low24h?: number;
  /** Traded in the last 24 hours, in the base asset (BTC for BTC-USD). */
  volume24h?: number;
  /**
   * Only on a conflated delivery (`conflate`, or a slow subscriber under CONFLATE_SLOW_MS): how
   * many earlier ticks of this pair this one replaces, which the subscriber never got.
   */
  skipped?: number;
};

/** The optional ticker fields of a tick, each a finite number > 0 when present. */
export const TICKER_FIELDS = ['bid', 'ask', 'open24h', 'high24h', 'low24h', 'volume24h'] as const;
export type TickerField = (typeof TICKER_FIELDS)[number];
export type TickerFields = Partial<Record<TickerField, number>>;

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
  | 'INVALID_JSON'
  | 'INVALID_ENCODING'
  | 'NOT_FOUND'
  | 'URI_TOO_LONG'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'MALFORMED_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'TOO_MANY_CONNECTIONS'
  | 'UNAUTHORIZED'
  | 'SHUTTING_DOWN'
  | 'FORBIDDEN_ORIGIN'
  | 'INVALID_CONFLATE'
  | 'INVALID_DELTA'
  | 'INVALID_INTERVAL'
  | 'INVALID_FROM'
  | 'INVALID_TO'
  | 'INVALID_RANGE'
  | 'INVALID_NAMESPACE'
  | 'TOKEN_EXPIRED'
  | 'PAIR_NOT_ENTITLED'
  | 'AUTH_UNAVAILABLE'
  | 'INTERNAL_ERROR';

/** The body of every error answer, REST or stream. */
export type ErrorBody = { statusCode: number; code: ErrorCode; message: string };

/**
 * A pair's price went stale (no fresh price for STALE_AFTER_MS: every source of it failing) or
 * is fresh again, on every transport (`status`). `since`: when its last fresh price came (stale),
 * or when a fresh one came back (fresh). The last price stays what it was; it is just not current.
 */
export type PairStatus = { pair: string; state: 'stale' | 'fresh'; since: string };

/** A resume point as clients send it: an event id, or a time (Unix s, Unix ms or ISO-8601). */
export type ResumeRequest = { lastEventId?: string; since?: string | number };

/** The stream transports, one name each on server and client (metrics labels, logs, the client's switch). */
export const TRANSPORTS = ['sse', 'socketio', 'websocket'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** Why a stream connection ended (a bounded set: a metrics label). */
export const DISCONNECT_REASONS = ['client', 'slow', 'limit', 'shutdown', 'error', 'expired'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

/** Conflation intervals a subscriber may ask for (`conflate=<ms>`; 0 or absent: every tick). */
export const CONFLATE_MIN_MS = 10;
export const CONFLATE_MAX_MS = 60_000;

/** What a subscription asks for, on every transport (Socket.IO `subscribe`, WebSocket `subscribe` message). */
export type SubscribeRequest = ResumeRequest & { pairs?: string[] | string; conflate?: number | string; delta?: boolean | number | string };
export type UnsubscribeRequest = { pairs?: string[] | string };

// ---- Socket.IO (namespace /prices) ----

/**
 * `pairs`: every pair the socket is subscribed to after the call. `recovered`: the resume point
 * was honoured (the missed ticks follow); false after a reset or when no resume point was given.
 */
export type SubscribeAck =
  | { ok: true; pairs: string[]; recovered: boolean }
  | { ok: false; error: { code: ErrorCode; message: string } };
export type UnsubscribeAck =
  | { ok: true; pairs: string[] }
  | { ok: false; error: { code: ErrorCode; message: string } };

/**
 * The handshake `auth` a client may send so that a reconnect resubscribes and resumes by itself
 * (pass a callback as `auth` so that each reconnect sends the newest `lastEventId`). A bad value
 * refuses the connection with a `connect_error` whose `data` is `{code, message}`.
 */
export type HandshakeAuth = SubscribeRequest & { token?: string };

/** `refresh {token}`: a new token for the same `sub` before the current one expires; the stream stays open. */
export type RefreshRequest = { token: string };
export type RefreshAck = { ok: true; expiresAt: string } | { ok: false; error: { code: ErrorCode; message: string } };

/**
 * Something the server tells a socket outside an acknowledgement: the error of a request that
 * came without an ack callback (`event` names it), or `SHUTTING_DOWN` just before the server
 * closes the transport (the client then reconnects by itself and resumes).
 */
export type SocketNotice = {
  code: ErrorCode;
  message: string;
  event?: string;
  /** With `SHUTTING_DOWN`: reconnect after this many ms (each socket its own, spread over SHUTDOWN_RETRY_SPREAD_MS). */
  retryMs?: number;
};

/** `data` of a `connect_error` raised by the server (limits, bad handshake auth, shutdown). */
export type ConnectErrorData = { code: ErrorCode; message: string };

export interface ServerToClientEvents {
  price: (tick: Tick) => void;
  /** With `delta` asked for: a tick as what changed since the pair's previous one on this connection (docs/api.md "Deltas"). */
  d: (...delta: WsDelta) => void;
  reset: (reset: ResetEvent) => void;
  status: (status: PairStatus) => void;
  notice: (notice: SocketNotice) => void;
}

/** The acknowledgement callback is optional: without one, errors arrive as a `notice`. */
export interface ClientToServerEvents {
  subscribe: (req: SubscribeRequest, ack?: (res: SubscribeAck) => void) => void;
  unsubscribe: (req: UnsubscribeRequest, ack?: (res: UnsubscribeAck) => void) => void;
  refresh: (req: RefreshRequest, ack?: (res: RefreshAck) => void) => void;
}

// ---- Plain WebSocket (/api/ws) ----

/**
 * Requests with a bad query, a refused origin, too many connections or during shutdown are
 * refused before the upgrade with an HTTP status and an ErrorBody. Close codes after it:
 * 1012 the service restarts (reconnect and resume), 1001 and 1006 as usual.
 */
export const WS_CLOSE_SERVICE_RESTART = 1012;
/**
 * A 1012's close reason ends with `; retry=<ms>`: reconnect after that many ms (each connection
 * its own delay, spread over SHUTDOWN_RETRY_SPREAD_MS), e.g. `service restart; reconnect and resume; retry=734`.
 */
export const WS_RETRY_PREFIX = 'retry=';
/** The stream's token expired (an `error` message TOKEN_EXPIRED comes first): reconnect with a new token and resume. */
export const WS_CLOSE_TOKEN_EXPIRED = 4001;
/** The subprotocol a WebSocket client offers beside `bearer.<token>` (the server selects it, never the token). */
export const WS_PROTOCOL = 'price-stream';
export const WS_BEARER_PREFIX = 'bearer.';

export type WsMessage =
  | ({ type: 'price' } & Tick)
  | ({ type: 'reset' } & ResetEvent)
  | ({ type: 'status' } & PairStatus)
  /** The answer to a `subscribe` message: every pair the connection has now. */
  | { type: 'subscribed'; pairs: string[]; recovered: boolean }
  | { type: 'unsubscribed'; pairs: string[] }
  /** A message the server refused (`request` names its type when it had one). */
  | { type: 'error'; code: ErrorCode; message: string; request?: string };

/**
 * With `delta` asked for: a tick as what changed since the pair's previous one on this connection
 * (docs/api.md "Deltas"), `[id, pair, ...values]`: the one message that is an array, not an object.
 */
export type WsDelta = [string, ...TickDelta];

/** What a WebSocket client may send on an open connection (the query string still subscribes at connect). */
export type WsClientMessage = ({ type: 'subscribe' } & SubscribeRequest) | ({ type: 'unsubscribe' } & UnsubscribeRequest);

// ---- REST ----

export type PairInfo = { pair: string; latest: Tick | null; fresh: boolean };
export type PairsResponse = { pairs: PairInfo[] };
export type PairError = { pair: string; code: ErrorCode; message: string };
export type PricesResponse = { prices: Tick[]; errors?: PairError[] };
export type HistoryResponse = { pair: string; count: number; complete: boolean; updates: Tick[] };

/** Candle widths of `GET /api/prices/:pair/candles?interval=`. */
export const CANDLE_INTERVALS = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000 } as const;
export type CandleInterval = keyof typeof CANDLE_INTERVALS;

/**
 * Where a candle's data came from: `live` (ticks this service published), the exchange a
 * backfill read it from (`kraken`, `coinbase`), `simulated` (the offline demo's generated
 * history), or `mixed` (a wider candle made of minutes from more than one of these).
 */
export type CandleSource = 'live' | 'kraken' | 'coinbase' | 'simulated' | 'mixed';

/** OHLC of the minutes in [time, time + interval). */
export type Candle = {
  /** ISO-8601: the start of the candle (UTC, a multiple of the interval since the epoch). */
  time: string;
  open: number;
  high: number;
  low: number;
  close: number;
  /** How many of our ticks made it (0 for backfilled minutes: the exchange's trades are not our ticks). */
  ticks: number;
  /** ISO-8601 time of the first and last of our ticks in it; null when it has none. */
  first: string | null;
  last: string | null;
  source: CandleSource;
  /** false for the candle that is still open (now falls in it); a closed candle never changes. */
  closed: boolean;
};

/** Intervals without any data, as they are: not invented flat candles. `to` is exclusive. */
export type CandleGap = { from: string; to: string };

/**
 * Candles oldest first, the last one possibly open. `from`/`to` are the bucket starts the answer
 * covers (`to` inclusive); `gaps` lists the stretches within them that have no data.
 */
export type CandlesResponse = { pair: string; interval: CandleInterval; from: string; to: string; candles: Candle[]; gaps: CandleGap[] };

/** The pair of the seed projects' routes (the Bitcoin tracker's, the LTP service's) when a request names none. */
export const LEGACY_PAIR = 'BTC-USD';

const ASSET_NAMES: Readonly<Record<string, string>> = {
  BTC: 'Bitcoin',
  ETH: 'Ethereum',
  SOL: 'Solana',
  XRP: 'XRP',
  ADA: 'Cardano',
  DOGE: 'Dogecoin',
  LTC: 'Litecoin',
  DOT: 'Polkadot',
};

/** The Bitcoin Price Streamer's fields `{symbol, name}` (with the tick's `timestamp`, `price`): `BTC`, `Bitcoin` for BTC-USD. */
export type LegacyAsset = { symbol: string; name: string };

export function legacyAsset(pair: string): LegacyAsset {
  const symbol = pair.split('-')[0] ?? pair;
  return { symbol, name: ASSET_NAMES[symbol] ?? symbol };
}

/** A tick as the Bitcoin Price Streamer's clients read it: every tick field plus `symbol` and `name`. */
export type LegacyTick = Tick & LegacyAsset;

export const SSE_PATH = '/api/prices/stream';
/** Our WebSocket feed. */
export const WS_PATH = '/api/prices/ws';
/**
 * The Bitcoin Price Streamer's route: without a query, its clients get BTC-USD ticks with
 * `symbol`/`name`; with any of our query parameters it is our feed, as it was before WS_PATH moved.
 */
export const LEGACY_WS_PATH = '/api/ws';
export const SOCKET_NAMESPACE = '/prices';
