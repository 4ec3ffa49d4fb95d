import type { StreamResponse } from '../http/socket-response';
import type { DisconnectReason } from '../shared/wire';
import { encoded, encodedPrice } from '../stream/encoded';
import { inSlices, WRITE_PACE, type Pace } from '../util/sliced-pass';
import { withPending, type Pending } from '../util/pending';
import { TurnBatcher } from '../util/turn-batcher';
import type { DeltaMessage, Sink, StreamMessage, Subscriber } from '../stream/stream-hub';
import { HEARTBEAT_FRAME, SSE_HEADERS, closingFrame, deltaFrameShape, expiredFrame, failedFrame, frameBytes, resetFrame, retryFrame, statusFrame, tickShape, type FrameKind } from './sse-frames';

/** The part of a response a stream uses: Node's ServerResponse, or the stream door's SocketResponse (a fake in unit tests). */
export type SseResponse = Pick<StreamResponse, 'writeHead' | 'write' | 'end' | 'destroy' | 'on' | 'off' | 'writableEnded' | 'destroyed' | 'writableLength' | 'chunkedEncoding' | 'socket'>;

/** Where frames go: the response's socket, or the response itself (see SseSink.open). */
type Output = {
  write(chunk: Buffer): boolean;
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
};

/** A turn's frames past this size are written at once instead of at the end of the turn (Node's own high-water mark). */
const TURN_BYTES = 16 * 1024;

/**
 * Streams with frames waiting for the end of this event-loop turn. A poll publishes one tick
 * per pair, one after another in the same turn; each stream's frames of the turn leave together
 * in one write (one system call) when the turn ends. One TurnBatcher serves them all, in slices
 * of FLUSH_PACE.budgetMs with the event loop in between (util/sliced-pass.ts): a pass over
 * 15,000 sockets takes ~300 ms here (the system calls, 20-80 µs each depending on the machine's
 * load), and REST, probes and new connections must not wait for all of it. A slice is timed, not
 * counted, so that what waits for it is bounded however slow each write is. A stream's frames
 * keep their order: what a later turn adds waits in the same `pending`, written by whichever
 * slice reaches the stream first; a stream closed meanwhile has nothing left to write.
 */
const waiting = new TurnBatcher<SseSink>((batch) => inSlices(batch, (sink) => sink.flush(), FLUSH_PACE, { sliceDone: forgetJoin, failed: (sink) => sink.fail() }));
/** The pass's pace, shared with Socket.IO's (a spec sets its clock). */
export const FLUSH_PACE: Pace = WRITE_PACE;

function forgetJoin(): void {
  lastJoin = undefined;
}

/**
 * Subscribers of the same pairs get the same frames of a turn in the same order: the bytes of
 * the last join are reused while the parts are the same, so a turn costs one concatenation per
 * distinct sequence of frames, not one per subscriber.
 */
let lastJoin: { parts: readonly Buffer[]; bytes: Buffer } | undefined;

function join(parts: readonly Buffer[]): Buffer {
  const memo = lastJoin;
  if (memo && memo.parts.length === parts.length && memo.parts.every((part, i) => part === parts[i])) return memo.bytes;
  const bytes = Buffer.concat(parts);
  lastJoin = { parts, bytes };
  return bytes;
}

const HEARTBEAT_BYTES = [frameBytes(HEARTBEAT_FRAME, false), frameBytes(HEARTBEAT_FRAME, true)] as const;

/**
 * One open SSE response as a hub Sink: frames messages, reports backpressure, cleans up once.
 *
 * Frames are bytes built once per tick for all subscribers (`tickShape`, kept by the stream core). Once the headers are
 * out they go straight to the socket as whole HTTP chunks (`res.write` would make four writes of
 * each). The frames of one event-loop turn are held and leave in one write when it ends. Should
 * the response not own its socket yet (a pipelined request behind another response: Node then
 * buffers the response's output), frames go through `res.write`, which keeps the order.
 *
 * Backpressure: `write` says "full" once the socket's `write()` returned false (its buffer to
 * the kernel passed 16 KiB); the hub then holds what follows. A turn's frames past 16 KiB (a
 * replay) are written at once, so the kernel's refusal shows while the replay is written.
 * 'drain' hands control back to the hub. Heartbeats are skipped while the socket is full.
 */
export class SseSink implements Sink {
  readonly transport = 'sse' as const;
  subscriber: Subscriber | undefined;

  bind(subscriber: Subscriber): void {
    this.subscriber = subscriber;
  }
  private congested = false;
  /** The hub was told "full" and waits for `drained()`. */
  private told = false;
  private closed = false;
  /** This turn's frames, written when it ends. */
  private pending: Pending<Buffer>;
  private pendingBytes = 0;
  /** The socket this sink corked at `open`: the head waits for the join's first write (see `joined`). */
  private held: { uncork(): void; readonly writableLength: number } | undefined;
  private out: Output;
  /** Whether frames must carry their own HTTP chunk framing (written to a chunked response's socket). */
  private chunk = false;
  private readonly onDrain = (): void => {
    this.congested = false;
    this.wake();
  };
  private readonly onResClose = (): void => this.close('client');
  private readonly onResError = (): void => this.close('error');

  constructor(
    private readonly res: SseResponse,
    readonly kind: FrameKind,
    private readonly retryMs: number,
    /** Called once when the stream is gone (before the subscriber hears of it). */
    private readonly onGone: (sink: SseSink) => void,
  ) {
    this.out = res;
    res.on('drain', this.onDrain);
    res.on('close', this.onResClose);
    res.on('error', this.onResError);
  }

  /**
   * Sends the headers and the `retry:` hint, then moves to the socket if the response owns it.
   * The socket is corked until the join's catch-up is written (`joined`, then the end of the
   * turn): the head, the hint and the replay leave in one system call, not two (in a reconnect
   * storm, every resume pays the join).
   */
  open(): void {
    const socket = this.res.socket;
    if (socket && !socket.writableCorked) {
      socket.cork();
      this.held = socket;
    }
    this.res.writeHead(200, SSE_HEADERS);
    this.res.write(retryFrame(this.retryMs));
    // Everything written so far was handed to the socket (none held back in the response).
    if (socket && this.res.writableLength === socket.writableLength) {
      this.res.off('drain', this.onDrain);
      socket.on('drain', this.onDrain);
      this.out = socket;
      this.chunk = this.res.chunkedEncoding;
    }
  }

  /** The join is done and its catch-up (if any) queued in this turn: the head leaves with it when the turn ends. */
  joined(): void {
    if (this.held === undefined || this.closed) return;
    if (this.pending === undefined) {
      waiting.add(this);
      this.pending = [];
    }
  }

  write(message: StreamMessage | DeltaMessage): boolean {
    if (this.closed) return false;
    this.queue(this.bytesOf(message));
    // A burst (a replay) leaves in 16 KiB writes, so the socket says early when it is full.
    if (this.pendingBytes >= TURN_BYTES) this.flush();
    if (!this.congested) return true;
    this.told = true;
    return false;
  }

  heartbeat(): void {
    if (!this.closed && !this.congested) this.queue(HEARTBEAT_BYTES[this.chunk ? 1 : 0]);
  }

  /**
   * 'shutdown', 'expired' (with a TOKEN_EXPIRED notice first) and 'error' (a join that failed:
   * an INTERNAL_ERROR notice): the stream ends with a reconnect hint after this turn's frames; a
   * subscriber whose buffer is full would hold the response open until it read everything, so it
   * is cut off instead. Any other reason: cut off at once (its buffer is dropped).
   */
  end(reason: DisconnectReason, retryMs = this.retryMs): void {
    if (this.closed) return;
    const last = reason === 'shutdown' ? closingFrame(retryMs) : reason === 'expired' ? expiredFrame(this.retryMs) : reason === 'error' ? failedFrame(this.retryMs) : undefined;
    if (last !== undefined && !this.congested) {
      // The frames still waiting and the last one leave in one write (`end` fully uncorks; the
      // uncork here covers an `end` that returned early): at a shutdown every stream ends in the
      // same pass, often while a tick's write pass is under way, and each write is a system call.
      const socket = this.res.socket;
      socket?.cork();
      try {
        this.flush();
        this.res.end(last);
      } finally {
        socket?.uncork();
      }
    }
    this.close(reason);
  }

  destroy(): void {
    this.close('shutdown');
  }

  /** @internal A write threw: drop the stream. */
  fail(): void {
    this.close('error');
  }

  /** @internal Writes this turn's frames in one write (at the end of the turn, or before the response ends). */
  flush(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (this.closed) return;
    const bytes = Array.isArray(pending) ? join(pending) : pending;
    let taken = bytes.length === 0 || this.out.write(bytes);
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      held.uncork();
      // Corked, the head and the catch-up counted against the socket's 16 KiB: what the kernel took is gone now.
      taken ||= held.writableLength < TURN_BYTES;
    }
    if (taken) this.wake();
    else this.congested = true;
  }

  private bytesOf(message: StreamMessage | DeltaMessage): Buffer {
    if (message.type === 'delta') return encoded(message.tick, deltaFrameShape(this.chunk));
    if (message.type === 'reset') return frameBytes(resetFrame(message.reset), this.chunk);
    if (message.type === 'status') return frameBytes(statusFrame(message.status), this.chunk);
    return encodedPrice(message, tickShape(this.kind, this.chunk));
  }

  /** Room again: the hub may write more (outside the socket's event, so its writes join the next turn). */
  private wake(): void {
    if (!this.told || this.congested || this.closed) return;
    this.told = false;
    this.subscriber?.drained();
  }

  /** Releases everything once: listeners, the response (destroyed unless already ended), the subscriber. */
  private close(reason: DisconnectReason): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    this.out.off('drain', this.onDrain);
    this.res.off('close', this.onResClose);
    this.res.off('error', this.onResError);
    if (!this.res.writableEnded && !this.res.destroyed) this.res.destroy();
    this.onGone(this);
    this.subscriber?.closed(reason);
  }

  private queue(bytes: Buffer): void {
    if (this.pending === undefined) waiting.add(this);
    this.pending = withPending(this.pending, bytes);
    this.pendingBytes += bytes.length;
  }
}
