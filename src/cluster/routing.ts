import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/** A connection that sends nothing this long is closed before it reaches the HTTP server. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;
/** File descriptors a worker keeps for itself (Redis, upstreams, its own files) beside its connections. */
const FD_RESERVE = 500;
/** A request line longer than this is routed by what it holds so far (the server answers 414 past 8 KiB anyway). */
const REQUEST_LINE_MAX = 8192;
/** The request line names the engine.io session; the session id names its worker (WorkerLink.sessionPrefix). */
const SESSION = /[?&]sid=w(\d+)\./;

/**
 * Reads a connection's first bytes (from a server made with `pauseOnConnect`), stops reading,
 * and hands them on: the connection then goes to the HTTP server here or, with its handle, to
 * another process, where nothing read after them may be lost.
 */
export function firstBytes(socket: Socket, then: (head: Buffer) => void): void {
  socket.on('error', () => socket.destroy());
  socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
  // Up to the end of the request line (it names the session), or REQUEST_LINE_MAX bytes.
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (chunk.indexOf(10) === -1 && size < REQUEST_LINE_MAX) return;
    socket.off('data', onData);
    stopReading(socket);
    socket.setTimeout(0);
    then(chunks.length === 1 ? chunk : Buffer.concat(chunks, size));
  };
  socket.on('data', onData);
  socket.resume();
}

/**
 * Stops reading a socket whose handle may be passed to another process: bytes read here would
 * be lost with it. pause() alone would let libuv read on into the stream's buffer; this is what
 * Node's own pause() does for a socket that reads into its own buffer, and resume() starts
 * reading again.
 */
export function stopReading(socket: Socket): void {
  socket.pause();
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
  if (handle?.readStop && handle.reading) {
    handle.reading = false;
    handle.readStop();
  }
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
