import { EventEmitter } from 'events';
import type { SseResponse } from './sse-sink';

/** A response whose socket accepts writes while `accepting` is true, like write() returning false on a full buffer. */
export class FakeResponse extends EventEmitter {
  accepting = true;
  /** A response that owns its socket gets one (see SseConnection.open); this one never does. */
  socket: FakeResponse | null = null;
  writableLength = 0;
  chunkedEncoding = false;
  writes: string[] = [];
  status: number | undefined;
  headers: Record<string, string> = {};
  writableEnded = false;
  destroyed = false;

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }

  write(chunk: string | Buffer): boolean {
    this.writes.push(chunk.toString());
    return this.accepting;
  }
  end(chunk?: string): this {
    if (chunk !== undefined) this.writes.push(chunk);
    this.writableEnded = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
  /** The socket has flushed its buffer. */
  drain(): void {
    this.accepting = true;
    this.emit('drain');
  }
  asResponse(): SseResponse {
    return this as unknown as SseResponse;
  }
}
