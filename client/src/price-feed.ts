import type { ResetEvent, Tick, Transport } from '../../src/shared/wire';

/** The transports' names are the wire contract's, the same as the server's metrics and logs. */
export type TransportKind = Transport;

export const TRANSPORTS: readonly { kind: TransportKind; label: string }[] = [
  { kind: 'sse', label: 'Server-Sent Events' },
  { kind: 'socketio', label: 'Socket.IO' },
  { kind: 'websocket', label: 'WebSocket' },
];

/** What a connection asks for; read afresh on every (re)connect so that it resumes from the last id. */
export type FeedRequest = { pairs: readonly string[]; lastEventId: string | null };

export type FeedHandlers = {
  /** The server accepted the subscription; ticks follow. */
  open(): void;
  tick(tick: Tick): void;
  reset(reset: ResetEvent): void;
  /** The connection is gone (or never came up). Called at most once per `start`. */
  closed(reason: string): void;
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

export type FeedFactory = (request: () => FeedRequest) => PriceFeed;
