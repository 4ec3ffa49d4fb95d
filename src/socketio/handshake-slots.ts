import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable } from '@nestjs/common';
import { toErrorBody } from '../http/api-exception.filter';
import { writeRawError } from '../http/raw-response';
import type { ErrorBody } from '../shared/wire';
import { StreamGate, type Lease } from '../stream/connection-registry';
import { TurnBatcher } from '../util/turn-batcher';

/** A handshake request as engine.io hands it to `allowRequest`: a polling one carries its response. */
export type HandshakeRequest = IncomingMessage & { res?: ServerResponse };

/**
 * Connection slots of engine.io connections, taken at the handshake (engine.io's
 * `allowRequest`), before engine.io opens anything: a handshake past MAX_STREAM_CONNECTIONS or
 * MAX_STREAM_CONNECTIONS_PER_IP is answered as SSE and WebSocket answer it, HTTP 429
 * `{code: "TOO_MANY_CONNECTIONS"}` (on the polling request, or on the socket of a WebSocket
 * upgrade), and holds nothing. A granted slot is claimed by the engine.io connection the
 * handshake opens (`claim`) and held until that connection closes, whether or not it ever joins
 * a namespace; a handshake that opens no connection (the client left while the slot was on its
 * way from the primary, the upgrade failed) gives it back at once.
 */
@Injectable()
export class HandshakeSlots {
  private readonly granted = new WeakMap<IncomingMessage, Lease>();
  /** Handshakes granted a slot in this turn: the slots no connection claimed by its end are given back. */
  private readonly unclaimed = new TurnBatcher<IncomingMessage>((reqs) => {
    for (const req of reqs) {
      const lease = this.granted.get(req);
      if (lease === undefined) continue;
      this.granted.delete(req);
      lease.cancel();
    }
  });

  constructor(private readonly gate: StreamGate) {}

  /** Takes the handshake's slot, then `allow`s it; or answers the refusal itself (engine.io is not called back). */
  admit(req: HandshakeRequest, allow: () => void): void {
    const ip = this.gate.clientIp(req.headers, req.socket.remoteAddress);
    this.gate.admit('socketio', ip).then(
      (lease) => {
        if (req.socket.destroyed) return lease.cancel();
        this.granted.set(req, lease);
        allow();
        // engine.io opens the connection within this turn (its handshake awaits only the session id).
        this.unclaimed.add(req);
      },
      (err: unknown) => refuse(req, toErrorBody(err)),
    );
  }

  /** The slot granted to the handshake that opened this connection (once). */
  claim(req: IncomingMessage): Lease | undefined {
    const lease = this.granted.get(req);
    this.granted.delete(req);
    return lease;
  }
}

/** The refusal as our JSON error: on the polling handshake's response, or straight on the upgrade's socket. */
function refuse(req: HandshakeRequest, body: ErrorBody): void {
  const { res, socket } = req;
  if (socket.destroyed) return;
  if (res === undefined) {
    socket.on('error', () => undefined);
    return writeRawError(socket, body);
  }
  if (res.headersSent) return void res.end();
  const json = JSON.stringify(body);
  res.writeHead(body.statusCode, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
  res.end(json);
}
