import type { Namespace, Socket } from 'socket.io';
import WebSocket from 'ws';
import type { ClientToServerEvents, DisconnectReason, ServerToClientEvents } from '../shared/wire';
import type { Lease } from '../stream/connection-registry';
import { deltaShape, encoded, encodedPrice, WireShape } from '../stream/encoded';
import type { EventRateLimiter } from '../stream/event-rate-limiter';
import type { DeltaMessage, Sink, StreamMessage, Subscriber } from '../stream/stream-hub';
import type { SubscribeCommand } from '../stream/subscribe-request';
import { inSlices, WRITE_PACE } from '../util/sliced-pass';
import { withPending, type Pending } from '../util/pending';
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

type Encoded = { packet: string; options: { wsPreEncodedFrame?: Buffer[] } };
type Encoder = PricesNamespace['server']['encoder'];
type Packet = Parameters<Encoder['encode']>[0];

/** Socket.IO packet type EVENT (socket.io-parser's PacketType.EVENT; the protocol's `2`). */
const EVENT = 2 as Packet['type'];

// ws's Sender.frame builds a WebSocket frame once for every socket, as Socket.IO's own broadcast
// does (ws issue 617); absent in some ws version, each socket frames the packet itself.
const frameOnce = (WebSocket as unknown as { Sender?: { frame?: (data: Buffer, options: object) => Buffer[] } }).Sender?.frame;

/** A WebSocket text frame of `4<packet>` ("4" is engine.io's message type), header and payload in one buffer: one write, not a corked pair. */
function wsFrame(packet: string): Buffer {
  return Buffer.concat(frameOnce!(Buffer.from(`4${packet}`), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true }));
}

/**
 * A tick's packet, encoded once for every socket of the namespace (its wire shape, kept by the
 * stream core): the Socket.IO encoding of the event and, for the WebSocket transport, the frame
 * itself.
 */
export class PacketEncoder {
  private readonly shape = new WireShape<Encoded>('socketio', (tick) => this.build('price', tick));
  /** A tick's delta: the event `d`, its arguments the WebSocket's delta message, `id, pair, ...values` (docs/api.md "Deltas"). */
  private readonly deltaShape = deltaShape<Encoded>('socketio-delta', (m) => this.build('d', m.tick.id, ...m.delta));

  constructor(
    private readonly encoder: Encoder,
    private readonly nsp: string,
    perMessageDeflate: boolean,
  ) {
    this.framesAsIs = frameOnce !== undefined && !perMessageDeflate;
  }

  /**
   * Whether engine.io's WebSocket transport writes `wsPreEncodedFrame` as it is (it does without
   * per-message deflate): then a turn's frames may leave as one write. Otherwise it would encode
   * the packet itself, so packets are written one by one.
   */
  readonly framesAsIs: boolean;

  encode(message: StreamMessage | DeltaMessage): Encoded {
    if (message.type === 'delta') return encoded(message.tick, this.deltaShape);
    if (message.type === 'price') return encodedPrice(message, this.shape);
    return message.type === 'reset' ? this.build('reset', message.reset) : this.build('status', message.status);
  }

  /**
   * Several packets as one engine.io write on the WebSocket transport: their frames back to back
   * in one buffer (the same bytes the client would get packet by packet). Sockets of the same
   * pairs get the same packets in a turn: the last join is reused while they are the same.
   */
  join(parts: readonly Encoded[]): Encoded {
    const memo = this.lastJoin;
    if (memo && memo.parts.length === parts.length && memo.parts.every((part, i) => part === parts[i])) return memo.joined;
    const frames: Buffer[] = [];
    for (const part of parts) frames.push(...part.options.wsPreEncodedFrame!);
    const joined: Encoded = { packet: parts.map((part) => part.packet).join(''), options: { wsPreEncodedFrame: [Buffer.concat(frames)] } };
    this.lastJoin = { parts, joined };
    return joined;
  }

  /** @internal The end of a flush pass: the memo goes (its packets need not outlive their ticks). */
  forget(): void {
    this.lastJoin = undefined;
  }

  private lastJoin: { parts: readonly Encoded[]; joined: Encoded } | undefined;

  private build(event: string, ...args: unknown[]): Encoded {
    const [packet] = this.encoder.encode({ type: EVENT, nsp: this.nsp, data: [event, ...args] } as Packet) as string[];
    const options: Encoded['options'] = {};
    if (frameOnce) options.wsPreEncodedFrame = [wsFrame(packet)];
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

/** A turn's packets past this size go to engine.io at once instead of at the end of the turn (as SSE's frames). */
const TURN_BYTES = 16 * 1024;
/**
 * Sockets with packets waiting for the end of this event-loop turn. A poll publishes one tick
 * per pair in the same turn; on the WebSocket transport a socket's packets of the turn leave in
 * one write (one system call, as SSE's frames), in timed slices with the event loop in between,
 * at SSE's pace (util/sliced-pass.ts WRITE_PACE).
 */
const waiting = new TurnBatcher<SocketSink>((batch) => inSlices(batch, flushSocket, WRITE_PACE, { sliceDone: forgetJoins, failed: (sink) => sink.destroy() }));
/** The encoders whose last join this slice may have memoised. */
const joined = new Set<PacketEncoder>();

function flushSocket(sink: SocketSink): void {
  sink.flush();
  joined.add(sink.encoder);
}

function forgetJoins(): void {
  for (const encoder of joined) encoder.forget();
  joined.clear();
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
 * public API) when the event-loop turn ends: on the WebSocket transport the turn's packets as
 * one write of their frames back to back (PacketEncoder.join), on polling one by one. Anything
 * else the socket sends (an acknowledgement, a notice) is written after what waits
 * (`flush` first), so the order is the order of the calls.
 *
 * engine.io hands a write to the transport at once while the transport is writable, and keeps
 * it in its write buffer otherwise (the previous batch not yet written to the kernel, or no poll
 * pending). Its public `packetCreate` and `flush` events count what waits there: while anything
 * has waited since an earlier turn, the sink says "full" and the hub holds the rest; the `flush`
 * that empties it hands control back to the hub.
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
  /** This turn's packets, written when it ends. */
  private pending: Pending<Encoded>;
  private pendingBytes = 0;

  constructor(
    readonly socket: PricesSocket,
    readonly encoder: PacketEncoder,
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

  write(message: StreamMessage | DeltaMessage): boolean {
    if (!this.socket.connected) return false;
    this.queue(this.encoder.encode(message));
    // A burst (a replay) goes to engine.io in 16 KiB writes, so its buffer shows early when the client does not keep up.
    if (this.pendingBytes >= TURN_BYTES) this.flush();
    if (this.waiting === 0) return true;
    const now = currentTurn();
    this.waitingSince ??= now;
    if (this.waitingSince === now) return true;
    this.told = true;
    return false;
  }

  /** Hands what waits for the end of the turn to engine.io now (at the turn's end, before a burst grows, before anything else is sent). */
  flush(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (!this.socket.connected) return;
    const conn = this.socket.conn;
    if (!Array.isArray(pending)) return this.send(pending);
    // WebSocket is the last transport (no upgrade follows it), so a joined write stays a WebSocket write.
    if (this.encoder.framesAsIs && conn.transport.name === 'websocket') return this.send(this.encoder.join(pending));
    for (const encoded of pending) this.send(encoded);
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
      this.flush();
      this.socket.emit('notice', { code: 'SHUTTING_DOWN', message: 'the server is restarting; reconnect and resume', ...(retryMs === undefined ? {} : { retryMs }) });
      this.socket.conn.close();
    } else if (reason === 'expired') {
      // As on shutdown: the transport closes, the client reconnects (its auth callback brings a new token) and resumes.
      this.flush();
      this.socket.emit('notice', { code: 'TOKEN_EXPIRED', message: 'the token has expired; reconnect with a new one, or send refresh before it expires' });
      this.socket.conn.close();
    } else if (reason === 'limit') {
      this.flush();
      this.socket.emit('notice', { code: 'RATE_LIMITED', message: 'too many events; disconnected' });
      this.socket.disconnect(true);
    } else {
      this.pending = undefined;
      this.socket.conn.close(true);
    }
  }

  destroy(): void {
    this.pending = undefined;
    this.socket.conn.close(true);
  }

  /** The socket is gone (socket.io's disconnect). */
  release(): void {
    this.pending = undefined;
    const conn = this.socket.conn as WithSink;
    conn.off('packetCreate', onPacketCreate);
    conn.off('flush', onFlush);
    conn[SINK] = undefined;
  }

  private send({ packet, options }: Encoded): void {
    this.socket.conn.write(packet, options as { compress?: boolean });
  }

  private queue(encoded: Encoded): void {
    if (this.pending === undefined) waiting.add(this);
    this.pending = withPending(this.pending, encoded);
    this.pendingBytes += encoded.packet.length;
  }
}
