import type { ServerResponse } from 'http';
import type { DisconnectReason } from '../stream/connection-registry';
import { HEARTBEAT_FRAME, SSE_HEADERS, closingFrame, frameBytes, retryFrame } from './sse-frames';

/** The part of a Node response a stream uses (a fake in unit tests). */
export type SseResponse = Pick<
  ServerResponse,
  'writeHead' | 'write' | 'end' | 'destroy' | 'on' | 'off' | 'writableEnded' | 'destroyed' | 'writableLength' | 'chunkedEncoding' | 'socket'
>;

/** Where frames go: the response's socket, or the response itself (see SseConnection.open). */
type Output = {
  write(chunk: Buffer): boolean;
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
};

/**
 * Connections with frames waiting for the end of this event-loop turn. A poll publishes one
 * tick per pair, one after another in the same turn; each connection's frames of the turn
 * leave together in one write (one system call) when the turn ends. One setImmediate serves
 * them all.
 */
let waiting: SseConnection[] = [];

function flushWaiting(): void {
  const batch = waiting;
  waiting = [];
  try {
    for (const conn of batch) {
      try {
        conn.flush();
      } catch {
        conn.close('error'); // one broken stream must not leave the rest of the batch unwritten
      }
    }
  } finally {
    lastJoin = undefined;
  }
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
 * One open SSE response: writes frames, watches backpressure, and cleans up exactly once.
 *
 * Frames are bytes built once per tick for all subscribers (`tickBytes`). Once the headers are
 * out, they go straight to the socket as whole HTTP chunks: `res.write` would make four writes
 * of each (length, CRLF, data, CRLF). The frames of one event-loop turn are held and leave in
 * one write when it ends (a poll's ticks, one per pair, in one system call). Should the response
 * not own its socket yet (a pipelined request behind another response: Node then buffers the
 * response's output), frames go through `res.write` instead, which keeps the order.
 *
 * Slow-subscriber detection: `write()` returns false once the buffer the kernel has not
 * accepted passes its high-water mark (16 KiB), and 'drain' follows once it is empty again.
 * Frames sent in between are this subscriber's unsent backlog. When it would pass `maxBacklog`
 * (CLIENT_BUFFER_SIZE) frames the response is destroyed: its buffer is dropped at once, so what
 * the server holds for one subscriber is bounded by 16 KiB + the frames of one turn +
 * CLIENT_BUFFER_SIZE frames, and a stalled reader costs the others nothing. The client resumes
 * from the last id it did receive. Heartbeats are skipped while the buffer is full and are
 * never counted.
 */
export class SseConnection {
  private congested = false;
  private backlog = 0;
  private closed = false;
  /** This turn's frames, written when it ends. */
  private pending: Buffer | Buffer[] | undefined;
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
    this.flush();
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

  /** @internal Writes this turn's frames in one write (at the end of the turn, or before the response ends). */
  flush(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    if (this.closed) return;
    if (!this.out.write(Array.isArray(pending) ? join(pending) : pending)) this.congested = true;
  }

  private write(bytes: Buffer): void {
    const pending = this.pending;
    if (pending === undefined) {
      this.pending = bytes;
      if (waiting.length === 0) setImmediate(flushWaiting);
      waiting.push(this);
    } else if (Array.isArray(pending)) {
      pending.push(bytes);
    } else {
      this.pending = [pending, bytes];
    }
  }
}
