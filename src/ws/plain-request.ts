import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Node hands every request with `Connection: Upgrade` to the server's `upgrade` listeners once
 * there are any (Socket.IO's and the WebSocket feed's), never to the `request` handler: an
 * `Upgrade: h2c` on a REST route, a probe or an SSE stream (what `curl --http2` sends over
 * http://) would get no answer at all. Such a request is served here as the ordinary HTTP/1.1
 * request it also is, on a connection that closes after the response (the upgrade offer is
 * declined by answering without 101, as RFC 9110 §7.8 allows).
 */
export function serveWithoutUpgrade(server: Server, req: IncomingMessage, socket: Duplex): void {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.on('finish', () => {
    res.detachSocket(socket as Socket);
    socket.end();
  });
  server.emit('request', req, res);
}
