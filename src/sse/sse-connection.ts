import type { ServerResponse } from 'http';
import type { DisconnectReason } from '../stream/connection-registry';
import { HEARTBEAT_FRAME, SSE_HEADERS, closingFrame, retryFrame } from './sse-frames';

/** The part of a Node response a stream uses (a fake in unit tests). */
export type SseResponse = Pick<ServerResponse, 'writeHead' | 'write' | 'end' | 'destroy' | 'on' | 'off' | 'writableEnded' | 'destroyed' | 'cork' | 'uncork'>;

/**
 * Responses written to in this turn of the event loop. They stay corked until the next one, so
 * that the ticks of one poll (one per pair, published one after another) leave in one write
 * system call per subscriber instead of one per tick. One setImmediate serves them all.
 */
const corked = new Set<SseResponse>();
let flushScheduled = false;

function flushCorked(): void {
  flushScheduled = false;
  for (const res of corked) res.uncork();
  corked.clear();
}

function corkForThisTurn(res: SseResponse): void {
  if (corked.has(res)) return;
  res.cork();
  corked.add(res);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushCorked);
  }
}

/**
 * One open SSE response: writes frames, watches backpressure, and cleans up exactly once.
 *
 * Slow-subscriber detection: Node's `write()` returns false once the response's buffer (the
 * part the kernel has not accepted) passes its high-water mark (16 KiB), and emits 'drain'
 * once that buffer is empty again. Frames written in between are this subscriber's unsent
 * backlog. When it would pass `maxBacklog` (CLIENT_BUFFER_SIZE) frames the response is
 * destroyed: its buffer is dropped at once, so what the server holds for one subscriber is
 * bounded by 16 KiB + (CLIENT_BUFFER_SIZE + 1) frames, and a stalled reader costs the others
 * nothing. The client resumes from the last id it did receive. Heartbeats are skipped while
 * the buffer is full (the connection is not idle) and are never counted.
 */
export class SseConnection {
  private congested = false;
  private backlog = 0;
  private closed = false;
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
    res.on('drain', this.onDrain);
    res.on('close', this.onResClose);
    res.on('error', this.onResError);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Frames queued since the buffer last filled up (0 while the client keeps up). */
  get backlogFrames(): number {
    return this.backlog;
  }

  /** Sends the headers and the `retry:` hint. */
  open(retryMs: number): void {
    this.res.writeHead(200, SSE_HEADERS);
    this.write(retryFrame(retryMs));
  }

  /** Queues one frame with a single write; returns false when the connection is (now) closed. */
  send(frame: string): boolean {
    if (this.closed) return false;
    if (this.congested && ++this.backlog > this.maxBacklog) {
      this.close('slow');
      return false;
    }
    this.write(frame);
    return true;
  }

  heartbeat(): void {
    if (!this.closed && !this.congested) this.write(HEARTBEAT_FRAME);
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
    this.res.end(closingFrame(retryMs)); // end() uncorks
    this.close('shutdown');
  }

  /** Releases everything once: listeners, the response (destroyed unless already ended) and, through onClosed, the rest. */
  close(reason: DisconnectReason): void {
    if (this.closed) return;
    this.closed = true;
    this.res.off('drain', this.onDrain);
    this.res.off('close', this.onResClose);
    this.res.off('error', this.onResError);
    if (!this.res.writableEnded && !this.res.destroyed) this.res.destroy();
    this.onClosed(reason);
  }

  private write(frame: string): void {
    corkForThisTurn(this.res);
    if (!this.res.write(frame)) this.congested = true;
  }
}
