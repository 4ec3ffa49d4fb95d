import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorBody } from '../shared/wire';

/** How long a refused connection may take to read its answer and close before it is dropped. */
const LINGER_MS = 2000;

/**
 * An error answer written straight to a socket that no HTTP response object owns (a refused
 * upgrade, a connection a full worker cannot take, what the parser refused), then
 * the socket is ended. What the client still sends is read and dropped (closing with unread
 * bytes would reset the connection and lose the answer), for at most LINGER_MS.
 */
export function writeRawError(socket: Duplex, body: ErrorBody, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${body.statusCode} ${STATUS_CODES[body.statusCode] ?? 'Error'}\r\n` +
      `Connection: close\r\nContent-Type: application/json; charset=utf-8\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
  socket.resume();
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}
