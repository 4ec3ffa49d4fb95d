import type { ServerResponse } from 'http';
import type { DisconnectReason } from '../stream/connection-registry';
import { HEARTBEAT_FRAME, SSE_HEADERS, closingFrame, frameBytes, retryFrame } from './sse-frames';

/** The part of a Node response a stream uses (a fake in unit tests). */
export type SseResponse = Pick<
  ServerResponse,
  'writeHead' | 'write' | 'end' | 'destroy' | 'on' | 'off' | 'writableEnded' | 'destroyed' | 'cork' | 'uncork' | 'writableLength' | 'chunkedEncoding' | 'socket'
>;

/** Where frames go: the response's socket, or the response itself (see SseConnection.open). */
type Output = {
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
};

/**
 * Outputs written to in this turn of the event loop. They stay corked until the next one, so
 * that the ticks of one poll (one per pair, published one after another) leave in one write
 * system call per subscriber instead of one per tick. One setImmediate serves them all.
 */
let corked: SseConnection[] = [];

function flushCorked(): void {
  const batch = corked;
  corked = [];
  for (const conn of batch) conn.uncork();
}

const HEARTBEAT_BYTES = [frameBytes(HEARTBEAT_FRAME, false), frameBytes(HEARTBEAT_FRAME, true)] as const;

/**
 * One open SSE response: writes frames, watches backpressure, and cleans up exactly once.
 *
 * Frames are bytes built once per tick for all subscribers (`tickBytes`). Once the headers are
 * out, they are written straight to the socket as whole HTTP chunks: one `socket.write` per
 * frame instead of the four that `res.write` makes of it (length, CRLF, data, CRLF). Should the
 * response not own its socket yet (a pipelined request behind another response: Node then
 * buffers the response's output), frames go through `res.write` instead, which keeps the order.
 *
 * Slow-subscriber detection: `write()` returns false once the buffer the kernel has not
 * accepted passes its high-water mark (16 KiB), and 'drain' follows once it is empty again.
 * Frames written in between are this subscriber's unsent backlog. When it would pass
 * `maxBacklog` (CLIENT_BUFFER_SIZE) frames the response is destroyed: its buffer is dropped at
 * once, so what the server holds for one subscriber is bounded by 16 KiB + (CLIENT_BUFFER_SIZE
 * + 1) frames, and a stalled reader costs the others nothing. The client resumes from the last
 * id it did receive. Heartbeats are skipped while the buffer is full and are never counted.
 */
export class SseConnection {
  private congested = false;
  private backlog = 0;
  private closed = false;
  private isCorked = false;
  private out: Output;
  /** Whether frames must carry their own HTTP chunk framing (written to a chunked response's socket). */
  private chunk = false;
  private readonly onDrain = (): void => {
    this.congested = false;
    this.backlog = 0;
  };
  private readonly onResClose = (): void => this.close('client');
  private readonly onResError = (): void => this.close('error');

  constructor(
    private readonly res: SseResponse,
    private readonly maxBacklog: number,
    private readonly onClosed: (reason: DisconnectReason) => void,
  ) {
    this.out = res;
    res.on('drain', this.onDrain);
    res.on('close', this.onResClose);
    res.on('error', this.onResError);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether frames for this connection are whole HTTP chunks (pass to `tickBytes`). */
  get chunked(): boolean {
    return this.chunk;
  }

  /** Frames queued since the buffer last filled up (0 while the client keeps up). */
  get backlogFrames(): number {
    return this.backlog;
  }

  /** Sends the headers and the `retry:` hint, then moves to the socket if the response owns it. */
  open(retryMs: number): void {
    this.res.writeHead(200, SSE_HEADERS);
    this.res.write(retryFrame(retryMs));
    const socket = this.res.socket;
    // Everything written so far was handed to the socket (none held back in the response).
    if (socket && this.res.writableLength === socket.writableLength) {
      this.res.off('drain', this.onDrain);
      socket.on('drain', this.onDrain);
      this.out = socket;
      this.chunk = this.res.chunkedEncoding;
    }
  }

  /**
   * Queues one frame with a single write; returns false when the connection is (now) closed.
   * A string is encoded here; bytes must already be framed for this connection (`chunked`).
   */
  send(frame: string | Buffer): boolean {
    if (this.closed) return false;
    if (this.congested && ++this.backlog > this.maxBacklog) {
      this.close('slow');
      return false;
    }
    this.write(typeof frame === 'string' ? frameBytes(frame, this.chunk) : frame);
    return true;
  }

  heartbeat(): void {
    if (!this.closed && !this.congested) this.write(HEARTBEAT_BYTES[this.chunk ? 1 : 0]);
  }

  /**
   * Ends the stream with a reconnect hint (shutdown). A subscriber whose buffer is full would
   * hold the response open until it read everything, so it is cut off instead.
   */
  finish(retryMs: number): void {
    if (this.closed) return;
    if (this.congested) {
      this.close('shutdown');
      return;
    }
    this.uncork();
    this.res.end(closingFrame(retryMs));
    this.close('shutdown');
  }

  /** Releases everything once: listeners, the response (destroyed unless already ended) and, through onClosed, the rest. */
  close(reason: DisconnectReason): void {
    if (this.closed) return;
    this.closed = true;
    this.out.off('drain', this.onDrain);
    this.res.off('close', this.onResClose);
    this.res.off('error', this.onResError);
    if (!this.res.writableEnded && !this.res.destroyed) this.res.destroy();
    this.onClosed(reason);
  }

  /** @internal Ends this turn's cork (the flush, or before the response ends). */
  uncork(): void {
    if (!this.isCorked) return;
    this.isCorked = false;
    this.out.uncork();
  }

  private write(bytes: Buffer): void {
    if (!this.isCorked) {
      this.isCorked = true;
      this.out.cork();
      if (corked.length === 0) setImmediate(flushCorked);
      corked.push(this);
    }
    if (!this.out.write(bytes)) this.congested = true;
  }
}
