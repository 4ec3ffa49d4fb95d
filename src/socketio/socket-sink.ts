import type { Namespace, Socket } from 'socket.io';
import WebSocket from 'ws';
import type { ClientToServerEvents, DisconnectReason, ServerToClientEvents } from '../shared/wire';
import type { Lease } from '../stream/connection-registry';
import { encodedPrice, WireShape } from '../stream/encoded';
import type { EventRateLimiter } from '../stream/event-rate-limiter';
import type { Sink, StreamMessage, Subscriber } from '../stream/stream-hub';
import type { SubscribeCommand } from '../stream/subscribe-request';
import { TurnBatcher } from '../util/turn-batcher';

/** What the server keeps per socket (in `socket.data`). */
export type SocketData = {
  /** The connection's slot, once the namespace middleware has it. */
  lease?: Lease;
  sink?: SocketSink;
  limiter?: EventRateLimiter;
  /** The subscription asked for in the handshake auth, run once the socket is connected. */
  auto?: SubscribeCommand | null;
};
export type PricesSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type PricesNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

type Encoded = { packet: string; options: { wsPreEncodedFrame?: unknown } };
type Encoder = PricesNamespace['server']['encoder'];
type Packet = Parameters<Encoder['encode']>[0];

/** Socket.IO packet type EVENT (socket.io-parser's PacketType.EVENT; the protocol's `2`). */
const EVENT = 2 as Packet['type'];

// ws's Sender.frame builds a WebSocket frame once for every socket, as Socket.IO's own broadcast
// does (ws issue 617); absent in some ws version, each socket frames the packet itself.
const frameOnce = (WebSocket as unknown as { Sender?: { frame?: (data: Buffer, options: object) => unknown } }).Sender?.frame;

/**
 * A tick's packet, encoded once for every socket of the namespace (its wire shape, kept by the
 * stream core): the Socket.IO encoding of the event and, for the WebSocket transport, the frame
 * itself ("4" is engine.io's message type).
 */
export class PacketEncoder {
  private readonly shape = new WireShape<Encoded>('socketio', (tick) => this.build('price', tick));

  constructor(
    private readonly encoder: Encoder,
    private readonly nsp: string,
  ) {}

  encode(message: StreamMessage): Encoded {
    if (message.type === 'price') return encodedPrice(message, this.shape);
    return message.type === 'reset' ? this.build('reset', message.reset) : this.build('status', message.status);
  }

  private build(event: string, data: unknown): Encoded {
    const [packet] = this.encoder.encode({ type: EVENT, nsp: this.nsp, data: [event, data] } as Packet) as string[];
    const options: Encoded['options'] = {};
    if (frameOnce) options.wsPreEncodedFrame = frameOnce(Buffer.from(`4${packet}`), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
    return { packet, options };
  }
}

/** Event-loop turns, counted only while someone asks (one TurnBatcher flush per turn that has a write). */
let turn = 0;
const turns = new TurnBatcher<true>(() => turn++, { unique: true });
function currentTurn(): number {
  turns.add(true);
  return turn;
}

type EngineSocket = PricesSocket['conn'];

/** Each engine.io connection's sink, on the connection itself: one shared listener per event instead of two closures per socket. */
const SINK = Symbol('price-stream sink');
type WithSink = EngineSocket & { [SINK]?: SocketSink };

function onPacketCreate(this: WithSink): void {
  this[SINK]?.created();
}

function onFlush(this: WithSink, buffer: readonly unknown[]): void {
  this[SINK]?.flushed(buffer.length);
}

/**
 * One socket as a hub Sink. Messages go to engine.io as pre-encoded packets (`conn.write`, its
 * public API). engine.io hands a packet to the transport at once while the transport is
 * writable, and keeps it in its write buffer otherwise (the previous batch not yet written to
 * the kernel, or no poll pending). Its public `packetCreate` and `flush` events count what
 * waits there: while anything does, the sink says "full" and the hub holds the rest; the
 * `flush` that empties it hands control back to the hub.
 */
export class SocketSink implements Sink {
  readonly transport = 'socketio' as const;
  subscriber!: Subscriber;

  bind(subscriber: Subscriber): void {
    this.subscriber = subscriber;
  }
  /** Packets in engine.io's write buffer, not yet handed to the transport. */
  private waiting = 0;
  /** The turn in which packets started waiting there. */
  private waitingSince: number | undefined;
  private told = false;

  constructor(
    readonly socket: PricesSocket,
    private readonly encoder: PacketEncoder,
  ) {
    const conn = socket.conn as WithSink;
    conn[SINK] = this;
    conn.on('packetCreate', onPacketCreate);
    conn.on('flush', onFlush);
  }

  /** @internal engine.io queued a packet. */
  created(): void {
    this.waiting++;
  }

  /** @internal engine.io handed `count` packets to the transport. */
  flushed(count: number): void {
    this.waiting = Math.max(0, this.waiting - count);
    if (this.waiting > 0) return;
    this.waitingSince = undefined;
    if (!this.told) return;
    this.told = false;
    // Not inside engine.io's flush: a packet written there would join the batch being sent.
    queueMicrotask(() => this.subscriber.drained());
  }

  write(message: StreamMessage): boolean {
    if (!this.socket.connected) return false;
    const { packet, options } = this.encoder.encode(message);
    this.socket.conn.write(packet, options as { compress?: boolean });
    if (this.waiting === 0) return true;
    const now = currentTurn();
    this.waitingSince ??= now;
    if (this.waitingSince === now) return true;
    this.told = true;
    return false;
  }

  /**
   * shutdown: a notice, then the transport closes (socket.io-client reconnects by itself on
   * "transport close" and resumes through its auth callback, whereas `disconnect(true)` would
   * stop it); expired likewise, with a TOKEN_EXPIRED notice. slow: the transport closes without
   * flushing, with the same reconnect. limit (a client flooding events): a notice and
   * `disconnect(true)`, for good.
   */
  end(reason: DisconnectReason, retryMs?: number): void {
    if (reason === 'shutdown') {
      this.socket.emit('notice', { code: 'SHUTTING_DOWN', message: 'the server is restarting; reconnect and resume', ...(retryMs === undefined ? {} : { retryMs }) });
      this.socket.conn.close();
    } else if (reason === 'expired') {
      // As on shutdown: the transport closes, the client reconnects (its auth callback brings a new token) and resumes.
      this.socket.emit('notice', { code: 'TOKEN_EXPIRED', message: 'the token has expired; reconnect with a new one, or send refresh before it expires' });
      this.socket.conn.close();
    } else if (reason === 'limit') {
      this.socket.emit('notice', { code: 'RATE_LIMITED', message: 'too many events; disconnected' });
      this.socket.disconnect(true);
    } else {
      this.socket.conn.close(true);
    }
  }

  destroy(): void {
    this.socket.conn.close(true);
  }

  /** The socket is gone (socket.io's disconnect). */
  release(): void {
    const conn = this.socket.conn as WithSink;
    conn.off('packetCreate', onPacketCreate);
    conn.off('flush', onFlush);
    conn[SINK] = undefined;
  }
}
