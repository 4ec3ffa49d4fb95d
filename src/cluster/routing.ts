import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/** A connection that sends nothing this long is closed before it reaches the HTTP server. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;
/** File descriptors a worker keeps for itself (Redis, upstreams, its own files) beside its connections. */
const FD_RESERVE = 500;
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
  socket.once('data', (head: Buffer) => {
    socket.pause();
    // pause() alone would let libuv read on into the stream's buffer. This is what Node's own
    // pause() does for a socket that reads into its own buffer; resume() starts reading again.
    const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
    if (handle?.readStop && handle.reading) {
      handle.reading = false;
      handle.readStop();
    }
    socket.setTimeout(0);
    then(head);
  });
  socket.resume();
}

/** The cluster worker id in the engine.io session id a request names (Socket.IO long-polling and its upgrade), if any. */
export function sessionOwner(head: Buffer): number | undefined {
  const lineEnd = head.indexOf(13);
  const line = head.toString('latin1', 0, lineEnd === -1 ? Math.min(head.length, 8192) : lineEnd);
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
