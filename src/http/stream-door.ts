import { maxHeaderSize as nodeMaxHeaderSize, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { canReadRequestHeads, readRequestHead, type RequestHead } from './request-head';
import { dropInput } from './release-parser';
import { ownSocket } from './socket-guard';

/** What the door does with a connection's request: whether a path is a stream's, and taking one. */
export type StreamDoorRoutes<Claim> = {
  /** What serves a GET of this path (no query), if `take` does: handed to `take` with the request. */
  claims(path: string): Claim | undefined;
  /** Serves the request (its socket is read from now on, and its input dropped: http/release-parser.ts `dropInput`). */
  take(head: RequestHead, socket: Socket, claim: Claim): void;
};

/** Why the door was not installed: this Node's HTTP server has no `connectionListener` on `'connection'`, or its parser cannot be had (request-head.ts). */
export type DoorOutcome = 'installed' | 'unknown node';

type ConnectionListener = (this: Server, socket: Socket) => void;

/**
 * Stream requests read straight off their connections, ahead of Node's HTTP server.
 *
 * A stream's request costs Node's HTTP server more than the stream's own start: a parser, the
 * connection's timers and listeners, an IncomingMessage and a ServerResponse, kept (all but the
 * parser, http/release-parser.ts) for the stream's whole life. In a reconnect storm every
 * subscriber pays that at once. Here (docs/benchmarks.md, "Issue 26, eleventh round"), a bare
 * server took 10,000 such connections at ~147 µs of CPU each through Node's HTTP server with the
 * parser given back, ~70 µs read this way, and held ~11.5 against ~3.8 KiB of RSS each
 * (bench/conn-cost.ts; a lower bound for the door, which does more than that bare server).
 *
 * Installed on the HTTP server, the door takes the place of Node's own `'connection'` listener:
 * every connection (accepted by the server, or handed to it by the port's other sockets or a
 * cluster worker's intake) is read here first. Its first chunk decides:
 * - a whole, plain GET of a stream route (request-head.ts says which requests are plain) is
 *   served by `routes.take` on the socket itself, its response written by socket-response.ts;
 * - anything else (every other route, upgrades, a head split over several reads, a pipelined
 *   request, what llhttp refuses) goes to Node's listener with the bytes read so far, exactly as
 *   Node would have had it: its parser, timeouts and `'clientError'` answers as before.
 *
 * A connection that sends nothing within `headTimeoutMs` is answered as Node answers it (the
 * server's `'clientError'` with ERR_HTTP_REQUEST_TIMEOUT, a 408), checked by one sweep a second
 * for all; one that half-closes first is closed; a server's `closeIdleConnections` (which its
 * `close` calls) closes those still waiting, as Node's closes its idle ones.
 *
 * It relies on Node's listener's name (`connectionListener`, lib/_http_server.js, the same on
 * Node 22 and 24) and its parser (request-head.ts); without either nothing is installed and every
 * request goes through Node's server.
 */
export function installStreamDoor<Claim>(server: Server, headTimeoutMs: number, routes: StreamDoorRoutes<Claim>): DoorOutcome {
  const node = server.listeners('connection').find((l) => l.name === 'connectionListener') as ConnectionListener | undefined;
  if (node === undefined || !canReadRequestHeads()) return 'unknown node';
  // Node's parser refuses a larger head (431, 414): such a request is Node's to answer.
  const maxHead = (server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? nodeMaxHeaderSize;
  const door = new StreamDoor(server, node, headTimeoutMs, maxHead, routes);
  server.removeListener('connection', node);
  server.prependListener('connection', (socket: Socket) => door.connection(socket));
  const closeIdle = server.closeIdleConnections;
  server.closeIdleConnections = function (this: Server) {
    door.closeWaiting();
    closeIdle.call(this);
  };
  return 'installed';
}

class StreamDoor<Claim> {
  /** Connections whose first bytes have not come, oldest first, with when they came. */
  private readonly waiting = new Map<Socket, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly onFirst: (this: Socket, chunk: Buffer) => void;
  private readonly onEarlyEnd: (this: Socket) => void;
  private readonly onEarlyClose: (this: Socket) => void;

  constructor(
    private readonly server: Server,
    private readonly node: ConnectionListener,
    private readonly headTimeoutMs: number,
    private readonly maxHead: number,
    private readonly routes: StreamDoorRoutes<Claim>,
  ) {
    // One listener of each for every connection (the socket is `this`), not a closure per connection.
    const first = (socket: Socket, chunk: Buffer) => this.first(socket, chunk);
    const forget = (socket: Socket) => this.forget(socket);
    this.onFirst = function (chunk) {
      first(this, chunk);
    };
    this.onEarlyEnd = function () {
      forget(this);
      this.destroy();
    };
    this.onEarlyClose = function () {
      forget(this);
    };
  }

  connection(socket: Socket): void {
    ownSocket(socket);
    this.waiting.set(socket, performance.now());
    socket.on('data', this.onFirst);
    socket.on('end', this.onEarlyEnd);
    socket.on('close', this.onEarlyClose);
    // No deadline (0), as Node's `headersTimeout` 0: none is checked.
    if (this.headTimeoutMs > 0) this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  /** Destroys every connection still waiting for its first bytes (the server closes its idle ones). */
  closeWaiting(): void {
    for (const socket of [...this.waiting.keys()]) {
      this.forget(socket);
      socket.destroy();
    }
  }

  private first(socket: Socket, chunk: Buffer): void {
    this.forget(socket);
    socket.pause();
    const path = streamPath(chunk);
    const claim = path === undefined ? undefined : this.routes.claims(path);
    const head = claim === undefined ? undefined : readRequestHead(chunk, this.maxHead);
    if (claim === undefined || head === undefined) return this.handOn(socket, chunk);
    dropInput(socket);
    socket.resume();
    this.routes.take(head, socket, claim);
  }

  /** To Node's HTTP server, with every byte read so far, as if it had taken the connection itself. */
  private handOn(socket: Socket, chunk: Buffer): void {
    // Anything read after the first chunk waits in the stream's buffer: it goes along, in order.
    const rest = socket.read() as Buffer | null;
    this.node.call(this.server, socket);
    socket.emit('data', rest === null ? chunk : Buffer.concat([chunk, rest]));
    resumeUnlessUpgraded(socket);
  }

  private forget(socket: Socket): void {
    this.waiting.delete(socket);
    socket.removeListener('data', this.onFirst);
    socket.removeListener('end', this.onEarlyEnd);
    socket.removeListener('close', this.onEarlyClose);
    if (this.waiting.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private sweep(): void {
    const before = performance.now() - this.headTimeoutMs;
    for (const [socket, since] of this.waiting) {
      if (since > before) break;
      this.forget(socket);
      if (socket.destroyed) continue;
      const err = Object.assign(new Error('the request head did not arrive in time'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
      if (this.server.listenerCount('clientError') > 0) this.server.emit('clientError', err, socket);
      else socket.destroy();
    }
  }
}

/**
 * Lets a connection handed to Node's server read on, unless Node took it for an upgrade while it
 * parsed those bytes (its `'upgrade'` listener owns the socket then, and its reading: Node leaves
 * it neither flowing nor paused, and bytes read with no `'data'` listener would be lost).
 */
export function resumeUnlessUpgraded(socket: Socket): void {
  if (socket.readableFlowing !== null) socket.resume();
}

/** How often connections waiting for their first bytes are checked against the deadline. */
const SWEEP_MS = 1000;

/**
 * The path of a request line `GET <path>[?query] ` at the start of `chunk`, if it starts so
 * (a cheap look before the parser: only a stream's request is parsed here).
 */
function streamPath(chunk: Buffer): string | undefined {
  // 'GET /'
  if (chunk.length < 6 || chunk[0] !== 0x47 || chunk[1] !== 0x45 || chunk[2] !== 0x54 || chunk[3] !== 0x20 || chunk[4] !== 0x2f) return undefined;
  const end = Math.min(chunk.length, 4 + MAX_STREAM_PATH);
  for (let i = 5; i < end; i++) {
    const c = chunk[i];
    if (c === 0x20 || c === 0x3f) return chunk.toString('latin1', 4, i);
  }
  return undefined;
}

/** Longer than any stream route's path. */
const MAX_STREAM_PATH = 64;
