import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { nodeHttpCommon } from './node-http-internals';

/**
 * Gives a stream's HTTP parser back to Node once its request has been read.
 *
 * Node's HTTP server keeps a connection's parser for the connection's whole life, for a next
 * request on it. A stream's response never ends before the stream does, so its parser waits
 * for nothing, and it is big: ~7 KiB of native memory each (an SSE stream on Node 24 holds
 * ~17 KiB of RSS with it released, ~24 KiB without: docs/benchmarks.md, "Issue 26, tenth
 * round"), and a new one costs ~17 µs to make, which every join past Node's pool of 1,000 free
 * parsers paid.
 *
 * Released, the connection is what an upgraded one is (Node does the same for `Upgrade`):
 * - Node's listeners that fed the parser (`data`; `end`; `pause` and `resume`, which paused
 *   it with the socket) are removed, and the parser goes back to Node's pool (`freeParser`,
 *   which also takes it off the server's list of connections to time out).
 * - The socket keeps being read, so that the client's close is seen at once; bytes the client
 *   sends after its request are dropped (a request pipelined behind a stream was never going to
 *   be answered), up to MAX_DROPPED_BYTES, past which the connection is closed.
 * - The client's end of the connection destroys it, which closes the response (Node's own
 *   handler ended it, with the same outcome: the stream is closed and its slot freed).
 * - The response must close the connection when it ends (`shouldKeepAlive = false`, set before
 *   its head: `Connection: close`): nothing would read a next request on it.
 *
 * Call it later than the request's event (the service does, once the stream's slot is granted):
 * while that event runs, the parser may still be reading the rest of its input.
 *
 * This reaches into Node's HTTP server (its `_http_common` module, deprecated in documentation
 * only as of Node 24, and the names of its listeners, the same on Node 22 and 24). Where a
 * connection does not look as expected (see ReleaseOutcome), nothing is changed and the parser
 * stays with the connection, as before; SseEntry says once when it is this Node's server that
 * is not as expected.
 */
export function releaseParser(req: { readonly socket: Socket | null }, res: { readonly shouldKeepAlive: boolean }): ReleaseOutcome {
  const socket = req.socket as (Socket & { parser?: unknown; _httpMessage?: unknown }) | null;
  if (!socket || socket.destroyed || !socket.parser) return 'no parser';
  if (socket._httpMessage !== res || res.shouldKeepAlive) return 'connection in use';
  const freeParser = (nodeHttpCommon() as HttpCommon | null)?.freeParser;
  if (typeof freeParser !== 'function') return 'unknown node';
  const feeding = NODE_LISTENERS.map(([event, name]) => [event, socket.listeners(event).find((l) => l.name === name)] as const);
  // `data` and `end` are always there; `pause` and `resume` only while the parser reads the socket's handle itself.
  if (feeding[0][1] === undefined || feeding[1][1] === undefined) return 'unknown node';
  for (const [event, listener] of feeding) if (listener) socket.removeListener(event, listener as (...args: unknown[]) => void);
  freeParser(socket.parser, req as IncomingMessage, socket);
  dropInput(socket);
  return 'released';
}

/**
 * A stream's connection once its request is read: what the client sends after it is dropped,
 * up to MAX_DROPPED_BYTES, past which the connection is closed, and the client's end of the
 * connection destroys it (its stream then closes). The socket must be read (flowing) for this.
 */
export function dropInput(socket: Socket): void {
  socket.on('end', destroyAtEnd);
  let dropped = 0;
  socket.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > MAX_DROPPED_BYTES) socket.destroy();
  });
}

/**
 * Why a parser was kept: the connection had none (an upgrade served as a request), another
 * response still owns it or it stays open after this one (a pipelined request; keep-alive), or
 * this Node's HTTP server is not the one this was written against (its listeners named
 * otherwise, `_http_common` gone).
 */
export type ReleaseOutcome = 'released' | 'no parser' | 'connection in use' | 'unknown node';

/**
 * What a client may send after a stream's request before its connection is closed: a body the
 * request had (as large as the REST routes take), not a flood.
 */
export const MAX_DROPPED_BYTES = 16 * 1024;

/** Node's own listeners on a server connection (lib/_http_server.js), by event. */
const NODE_LISTENERS = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['pause', 'onSocketPause'],
  ['resume', 'onSocketResume'],
] as const;

type HttpCommon = { freeParser?: (parser: unknown, req: IncomingMessage | null, socket: Socket) => void };

function destroyAtEnd(this: Socket): void {
  this.destroy();
}
