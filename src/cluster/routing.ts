import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { writeRawError } from '../http/raw-response';
import { ownSocket } from '../http/socket-guard';

/** File descriptors a worker keeps for itself (Redis, upstreams, its own files) beside its connections. */
const FD_RESERVE = 500;
/** A request line longer than this is routed by what it holds so far (the server answers 414 past 8 KiB anyway). */
const REQUEST_LINE_MAX = 8192;
/** The request line names the engine.io session; the session id names its worker (WorkerLink.sessionPrefix). */
const SESSION = /[?&]sid=w(\d+)\./;

/**
 * Accepted connections whose request line has not come yet, per client address: a client that
 * opens connections and drips into them (or sends nothing) holds at most `perAddress` of them,
 * each for at most the head deadline. A full address gets 429 TOO_MANY_CONNECTIONS at once.
 */
export class PendingConnections {
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly perAddress: number) {}

  take(address: string): boolean {
    const n = this.byAddress.get(address) ?? 0;
    if (n >= this.perAddress) return false;
    this.byAddress.set(address, n + 1);
    return true;
  }

  give(address: string): void {
    const n = (this.byAddress.get(address) ?? 1) - 1;
    if (n > 0) this.byAddress.set(address, n);
    else this.byAddress.delete(address);
  }

  /** Pending connections of one address (tests, metrics). */
  of(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }
}

/** The front door's limits: the head deadline (absolute, from the accept) and the pending connections per address. */
export type FrontDoor = { headTimeoutMs: number; pending: PendingConnections };

/**
 * Reads a connection's first bytes (from a server made with `pauseOnConnect`), stops reading,
 * and hands them on: the connection then goes to the HTTP server here or, with its handle, to
 * another process, where nothing read after them may be lost. The request line must arrive
 * within the head deadline from the accept, however slowly it drips.
 */
export function firstBytes(socket: Socket, then: (head: Buffer) => void, door: FrontDoor): void {
  ownSocket(socket);
  const address = socket.remoteAddress ?? '';
  if (!door.pending.take(address)) {
    return writeRawError(socket, { statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections from this address are still sending their request' }, { 'Retry-After': '1' });
  }
  let pending = true;
  const settle = () => {
    if (!pending) return;
    pending = false;
    clearTimeout(deadline);
    door.pending.give(address);
  };
  const deadline = setTimeout(() => socket.destroy(), door.headTimeoutMs);
  socket.once('close', settle);
  // Up to the end of the request line (it names the session), or REQUEST_LINE_MAX bytes.
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (chunk.indexOf(10) === -1 && size < REQUEST_LINE_MAX) return;
    socket.off('data', onData);
    socket.off('close', settle);
    settle();
    stopReading(socket);
    then(chunks.length === 1 ? chunk : Buffer.concat(chunks, size));
  };
  socket.on('data', onData);
  socket.resume();
}

/**
 * Stops reading a socket whose handle may be passed to another process: bytes read here would
 * be lost with it. pause() alone would let libuv read on into the stream's buffer; this is what
 * Node's own pause() does for a socket that reads into its own buffer (`onread`), and resume()
 * starts reading again.
 *
 * The one place the service reaches into a Node internal (`_handle`): Node has no public way to
 * stop a socket's read once it has begun (nodejs/node#8353), and both ends of a forward need it,
 * the worker after reading the request line and the primary, whose sockets received over IPC
 * read from their creation (child_process makes them so). With pause() alone a forwarded
 * connection loses what the client sends after the bytes read (measured: 5 of 20 connections
 * whose head came in two pieces 0-9 ms apart).
 */
export function stopReading(socket: Socket): void {
  socket.pause();
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
  if (handle?.readStop && handle.reading) {
    handle.reading = false;
    handle.readStop();
  }
}

let zeros = Buffer.alloc(0);

/**
 * Keeps a socket that stopped reading stopped until it is passed on. Node sends one handle at a
 * time per channel: a send made while another handle waits for its acknowledgement waits in
 * Node's queue with the socket, and meanwhile the socket's stream asks for more on its own
 * (after its last chunk) and reads on into its buffer, which is lost with the handle. A buffer
 * at its high-water mark asks for nothing: what the client sends stays in the kernel for the
 * process that takes the socket. The filler is never read (the socket is paused and passed on).
 */
export function holdForHandover(socket: Socket): void {
  if (socket.readableEnded) return;
  if (zeros.length < socket.readableHighWaterMark) zeros = Buffer.alloc(socket.readableHighWaterMark);
  socket.unshift(zeros.subarray(0, socket.readableHighWaterMark));
}

/** The cluster worker id in the engine.io session id a request names (Socket.IO long-polling and its upgrade), if any. */
export function sessionOwner(head: Buffer): number | undefined {
  const lineEnd = head.indexOf(13);
  const line = head.toString('latin1', 0, lineEnd === -1 ? Math.min(head.length, REQUEST_LINE_MAX) : lineEnd);
  const m = SESSION.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** Connections one worker may hold: its open-files limit less what it keeps for itself. */
export function workerCapacity(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return Math.max(1, Number(m[1]) - FD_RESERVE);
  } catch {
    // not Linux: no limit known
  }
  return Infinity;
}
