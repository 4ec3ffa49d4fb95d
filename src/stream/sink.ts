import type { DisconnectReason, PairStatus, ResetEvent, Tick, TickDelta, Transport } from '../shared/wire';
import type { Subscriber } from './subscriber';

/** What the hub hands a transport. A live tick's message is one object shared by every subscriber (its encodings are cached per tick: encoded.ts). */
export type PriceMessage = { readonly type: 'price'; readonly tick: Tick; readonly skipped: number };
export type ResetMessage = { readonly type: 'reset'; readonly reset: ResetEvent };
export type StatusMessage = { readonly type: 'status'; readonly status: PairStatus };
export type StreamMessage = PriceMessage | ResetMessage | StatusMessage;
/**
 * A live tick as what changed since `baseId`, the previous tick of its pair (one object per tick,
 * shared): written instead of the tick's PriceMessage to a `delta` subscriber whose last tick of
 * the pair is `baseId` (DeltaTracker). Never queued: chosen as the message is written.
 */
export type DeltaMessage = { readonly type: 'delta'; readonly tick: Tick; readonly baseId: string; readonly delta: TickDelta };

/**
 * A transport, as the hub sees it (centrifuge's Transport: write and close). A transport frames
 * messages and does its handshake; everything else (replay, live fan-out, the slow-subscriber
 * policy, conflation, shutdown) is the hub's.
 */
export interface Sink {
  readonly transport: Transport;
  /** The subscriber the hub made for this sink, given before anything else happens to it. */
  bind(subscriber: Subscriber): void;
  /**
   * Hands one message to the transport. Returns false once the transport holds as much as it
   * should (its buffer to the kernel is full): the hub then keeps further messages itself until
   * the transport calls `Subscriber.drained()`.
   */
  write(message: StreamMessage | DeltaMessage): boolean;
  /**
   * Ends the connection: with the transport's reconnect hint on 'shutdown' (`retryMs`, this
   * stream's own delay: reconnect-hint.ts), at once otherwise. The transport calls
   * `Subscriber.closed()` when the connection is gone, whoever ended it.
   */
  end(reason: DisconnectReason, retryMs?: number): void;
  /** Drops the connection at once (a shutdown's stragglers). */
  destroy(): void;
}

/** How a join ends: `ready` before its first message (acknowledgements), or `failed` (the resume read failed). */
export type JoinCallbacks = { ready?(recovered: boolean): void; failed?(err: unknown): void };

/** For log lines. */
export type SubscriberInfo = { requestId?: string };
