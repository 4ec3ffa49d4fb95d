import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

type HeaderValue = string | number | readonly string[];

/** What a stream's entry reads of its request: Node's IncomingMessage, or the stream door's (stream-door.ts). */
export type StreamRequest = { readonly method?: string; readonly url?: string; readonly headers: IncomingHttpHeaders; readonly socket: Socket };

/** What a stream's entry answers with: Node's ServerResponse, or a SocketResponse. */
export interface StreamResponse {
  statusCode: number;
  shouldKeepAlive: boolean;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
  readonly chunkedEncoding: boolean;
  readonly socket: Socket | null;
  setHeader(name: string, value: string): unknown;
  writeHead(statusCode: number, headers?: Readonly<Record<string, string | number>>): unknown;
  write(chunk: string | Buffer): boolean;
  end(chunk?: string): unknown;
  destroy(): unknown;
  on(event: 'close' | 'error' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'error' | 'drain', listener: () => void): unknown;
}

/**
 * A stream's response written straight to its connection, for a request the stream door
 * (stream-door.ts) read off the socket itself: no ServerResponse, no IncomingMessage.
 * It writes what Node's ServerResponse writes for the same calls, so that a stream's bytes are
 * the same whichever way its request came in: the status line; the headers set (in order, a
 * name set again replacing its value), then writeHead's; `Date`; `Connection: close` (the
 * connection serves this response only, as every stream's: docs/api.md); and, without a
 * `Content-Length`, `Transfer-Encoding: chunked` and chunked writes. The head leaves with the
 * first write. Header names and values are checked as Node checks them (throwing as it does).
 * What its callers (SseEntry, SseSink) never do is not provided: a `Connection` or
 * `Transfer-Encoding` of the caller's, a body on a 204 or 304.
 *
 * Its `close` and `drain` are its socket's, as a response that owns its socket (no `error`: see
 * `on`). `end` ends the connection once what was written is out, as Node does for `Connection: close`.
 */
export class SocketResponse implements StreamResponse {
  statusCode = 200;
  /** Kept for the callers that set it on Node's responses; this one always closes its connection. */
  shouldKeepAlive = false;
  chunkedEncoding = false;
  writableEnded = false;
  private readonly headers = new Map<string, [name: string, value: HeaderValue]>();
  /** The head, written with the first bytes of the body (or at `end`). */
  private head: string | undefined;
  private sent = false;

  constructor(readonly socket: Socket) {}

  get headersSent(): boolean {
    return this.sent;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  setHeader(name: string, value: HeaderValue): this {
    // As Node's: a header of the head already sent cannot be set.
    if (this.sent) throw Object.assign(new Error(`Cannot set headers after they are sent to the client (${name})`), { code: 'ERR_HTTP_HEADERS_SENT' });
    validateHeaderName(name);
    for (const v of Array.isArray(value) ? value : [value]) validateHeaderValue(name, v);
    this.headers.set(name.toLowerCase(), [name, value]);
    return this;
  }

  writeHead(statusCode: number, headers: Readonly<Record<string, HeaderValue>> = {}): this {
    if (this.sent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    for (const [name, value] of Object.entries(headers)) this.setHeader(name, value);
    this.statusCode = statusCode;
    this.sent = true;
    const bodiless = statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200);
    this.chunkedEncoding = !bodiless && !this.headers.has('content-length') && !this.headers.has('transfer-encoding');
    let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'unknown'}\r\n`;
    for (const [name, value] of this.headers.values()) {
      if (Array.isArray(value)) for (const v of value as readonly string[]) head += `${name}: ${v}\r\n`;
      else head += `${name}: ${String(value)}\r\n`;
    }
    if (!this.headers.has('date')) head += `Date: ${utcDate()}\r\n`;
    head += 'Connection: close\r\n';
    if (this.chunkedEncoding) head += 'Transfer-Encoding: chunked\r\n';
    this.head = `${head}\r\n`;
    return this;
  }

  write(chunk: string | Buffer): boolean {
    // As Node's: nothing is written to a connection that is gone (no error made for it either).
    if (this.writableEnded || this.socket.destroyed) return false;
    if (!this.sent) this.writeHead(this.statusCode);
    // An empty chunk would be the chunked body's last: nothing to write (the head waits, as Node's).
    if (chunk.length === 0) return true;
    return this.put(chunk);
  }

  end(chunk?: string | Buffer): this {
    if (this.writableEnded) return this;
    if (!this.sent) this.writeHead(this.statusCode);
    const socket = this.socket;
    if (socket.destroyed) {
      this.writableEnded = true;
      return this;
    }
    socket.cork();
    if (chunk !== undefined && chunk.length > 0) this.put(chunk);
    else this.flushHead();
    if (this.chunkedEncoding) socket.write('0\r\n\r\n');
    this.writableEnded = true;
    socket.end();
    socket.uncork();
    // As Node's `destroySoon`: closed once the last bytes are out (the client's input is read and dropped meanwhile).
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
    return this;
  }

  destroy(): this {
    this.socket.destroy();
    return this;
  }

  /**
   * `close` and `drain` are its socket's. `error` never comes, as from Node's ServerResponse:
   * a socket's errors (a client's reset) are socket-guard.ts's, which destroys it, and the
   * response hears of it as its `close`.
   */
  on(event: 'close' | 'error' | 'drain', listener: () => void): this {
    if (event !== 'error') this.socket.on(event, listener);
    return this;
  }

  off(event: 'close' | 'error' | 'drain', listener: () => void): this {
    if (event !== 'error') this.socket.off(event, listener);
    return this;
  }

  private put(chunk: string | Buffer): boolean {
    const head = this.head;
    this.head = undefined;
    const body = this.chunkedEncoding ? `${Buffer.byteLength(chunk).toString(16)}\r\n` : '';
    if (head === undefined && body === '') return this.socket.write(chunk);
    const socket = this.socket;
    socket.cork();
    socket.write(`${head ?? ''}${body}`, 'latin1');
    let taken = socket.write(chunk);
    if (this.chunkedEncoding) taken = socket.write('\r\n');
    socket.uncork();
    return taken;
  }

  private flushHead(): void {
    const head = this.head;
    this.head = undefined;
    if (head !== undefined) this.socket.write(head, 'latin1');
  }
}

/** The `Date` header's value, made once a second (as Node's HTTP server does). */
let date: string | undefined;

function utcDate(): string {
  if (date === undefined) {
    const now = new Date();
    date = now.toUTCString();
    setTimeout(() => (date = undefined), 1000 - now.getMilliseconds()).unref();
  }
  return date;
}
