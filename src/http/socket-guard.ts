import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { writeRawError } from './raw-response';
import { MAX_URL_LENGTH } from './limits';
import type { ErrorBody } from '../shared/wire';

/**
 * The one owner of every socket the service takes over from Node: each gets this error handler
 * before anything else can write to it. Node's HTTP server listens for a socket's errors only
 * while it parses requests on it; a socket it hands on (an upgrade request, served or declined;
 * a connection the cluster routes, relays or refuses) has none, and a client that resets it
 * makes the next write an unhandled `'error'` that stops the process. Here an error only ends
 * the connection; the stream or request on it learns of it from its `'close'`.
 */
const owned = new WeakSet<Duplex>();

export function ownSocket<T extends Duplex>(socket: T): T {
  if (!owned.has(socket)) {
    owned.add(socket);
    socket.on('error', destroyOnError);
  }
  return socket;
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Every connection of the HTTP server is owned from its first moment (`'connection'`, which the
 * cluster's router also emits for what it hands in), and what Node's parser refuses is answered
 * with the service's JSON error instead of Node's bare status line.
 */
export function guardHttpServer(server: Server, headTimeoutMs: number): void {
  server.on('connection', ownSocket);
  server.on('clientError', answerClientError);
  // An absolute deadline for a request's head (Node checks it every 30 s): a client that drips
  // a byte at a time cannot hold a connection for longer.
  server.headersTimeout = headTimeoutMs;
}

type ClientError = Error & { code?: string; rawPacket?: Buffer };

function answerClientError(err: ClientError, socket: Duplex): void {
  ownSocket(socket);
  // As Node's own handler: nothing can be said on a connection the peer reset or we closed.
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  writeRawError(socket, clientErrorBody(err));
}

/** What the parser refused, as the service's error answer with a stable code. */
export function clientErrorBody(err: ClientError): ErrorBody {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return requestLineTooLong(err.rawPacket)
        ? { statusCode: 414, code: 'URI_TOO_LONG', message: `request target longer than ${MAX_URL_LENGTH} characters` }
        : { statusCode: 431, code: 'HEADERS_TOO_LARGE', message: 'request headers too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { statusCode: 408, code: 'REQUEST_TIMEOUT', message: 'the request head did not arrive in time' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { statusCode: 413, code: 'PAYLOAD_TOO_LARGE', message: 'request body too large' };
    default:
      return { statusCode: 400, code: 'MALFORMED_REQUEST', message: 'malformed HTTP request' };
  }
}

/**
 * Whether the head overflowed in its request line: the bytes being parsed start a request and
 * hold no line end within the longest target served, or (the line came in several reads, as
 * when the cluster's router read its start) they hold no line end at all. A long header line
 * is a 431 instead.
 */
function requestLineTooLong(packet: Buffer | undefined): boolean {
  if (!packet) return false;
  const lineEnd = packet.indexOf(10);
  if (!/^[A-Z]+ /.test(packet.toString('latin1', 0, 16))) return lineEnd === -1;
  return lineEnd === -1 || lineEnd > MAX_URL_LENGTH;
}
