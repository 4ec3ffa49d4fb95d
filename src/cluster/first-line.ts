import type { Socket } from 'node:net';
import { ownSocket } from '../http/socket-guard';

/**
 * Reads a connection's first bytes (from a server made with `pauseOnConnect`) up to the end of
 * their first line (`\n`) or `maxBytes`, whichever comes first, then pauses the socket and hands
 * on every byte read, the line and whatever came with it, in one buffer: what follows waits in
 * the socket's stream for whoever reads it next, so nothing is lost. The line must come within
 * `timeoutMs` from the call, however slowly it drips; else the socket is destroyed and `then`
 * is never called.
 *
 * `release` (the caller's count of connections still waiting for their line) is called once,
 * when the wait ends: before `then`, or at the socket's close if that comes first. The socket
 * is owned (ownSocket: an error handler on it) before anything else; callers that write or
 * destroy before calling this own it first themselves.
 */
export function readFirstLine(socket: Socket, maxBytes: number, timeoutMs: number, then: (head: Buffer) => void, release: () => void = () => undefined): void {
  ownSocket(socket);
  let waiting = true;
  const settle = () => {
    if (!waiting) return;
    waiting = false;
    clearTimeout(deadline);
    release();
  };
  const deadline = setTimeout(() => socket.destroy(), timeoutMs);
  socket.once('close', settle);
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    // An earlier chunk had no line end, or the read would have stopped there.
    if (chunk.indexOf(10) === -1 && size < maxBytes) return;
    socket.off('data', onData);
    socket.off('close', settle);
    settle();
    socket.pause();
    then(chunks.length === 1 ? chunk : Buffer.concat(chunks, size));
  };
  socket.on('data', onData);
  socket.resume();
}
