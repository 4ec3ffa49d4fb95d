import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import { ownSocket } from '../http/socket-guard';
import { readFirstLine } from './first-line';

/**
 * The relay between workers: a worker that reads a request of another worker's engine.io
 * session (Socket.IO long-polling and its upgrade) connects to that worker's relay socket and
 * copies bytes both ways for the connection's lifetime. No handle moves between processes, so
 * nothing the client sends can be lost between two owners: the socket stays where it was
 * accepted, and what it read stays in its stream's buffer until the pipe copies it on.
 *
 * On the relay socket the relaying worker first writes one preamble line, then the bytes it read:
 *   PSRELAY1 <key> <IPv4|IPv6> <client port> <client address>\n
 * The key (random per primary, given to the workers in RELAY_KEY_ENV) keeps any other local
 * process from handing the service connections with an address of its choosing.
 */

/** The environment variable in which the primary gives each worker the relay key (32 hex digits). */
export const RELAY_KEY_ENV = 'PRICE_STREAM_RELAY_KEY';
/** The longest preamble read; a relay socket that sends no line end within it is closed. */
const PREAMBLE_MAX = 160;
/** The preamble comes with the relay's first write; a local peer that sends none within this is closed. */
const PREAMBLE_TIMEOUT_MS = 2_000;
/**
 * Relay sockets waiting for their preamble, at most: a local process that opens connections and
 * sends nothing holds no more than this many of the worker's files (each for PREAMBLE_TIMEOUT_MS),
 * uncounted by its door until the preamble checks out.
 */
const PREAMBLE_WAITING_MAX = 256;
/** Connects to a busy owner (its relay backlog full) at most this many times, this much longer apart each time (0.9 s in all). */
const BUSY_TRIES = 8;
const BUSY_RETRY_MS = 30;
const PREAMBLE = /^PSRELAY1 ([0-9a-f]{32}) (IPv4|IPv6) (\d{1,5}) ([0-9A-Za-z.:%_-]{2,64})\n$/;

/**
 * Where worker `workerId` takes relayed connections: a Linux abstract unix socket (nothing on
 * disk, so nothing left behind by a worker that is killed; its name goes with its socket), named
 * by a hash of the key, so that two services on one host (two containers sharing the network
 * namespace, whose primaries may have the same pid) never meet. Elsewhere (development on macOS)
 * a socket file in the temporary directory, which the socket's close removes.
 */
export function relayAddress(workerId: number, key: string): string {
  const name = `price-stream-${createHash('sha256').update(key).digest('hex').slice(0, 16)}-w${workerId}`;
  return process.platform === 'linux' ? `\0${name}` : join(tmpdir(), `${name}.sock`);
}

export type RelayHooks = {
  /** The owner cannot be reached (`code`: ECONNREFUSED when it is gone or shutting down, EAGAIN when busy every time): nothing was written to the client, which is still paused. */
  unreachable(code: string | undefined): void;
  /** The socket to the owner, the moment it exists (the caller counts it until its 'close'). */
  opened(upstream: Socket): void;
};

/**
 * Relays `client` (paused, `head` read from it) to the worker at `address`. Each direction is a
 * pipeline: the client's end ends the owner's side and the other way round; an error or a reset
 * on either side destroys both, and once the owner's side has ended and its bytes are written to
 * the client, both are closed. A unix socket whose backlog is full refuses a connect at once
 * (EAGAIN, where TCP would retry): a busy owner is tried again, BUSY_TRIES times in all.
 */
export function relay(client: Socket, head: Buffer, address: string, key: string, hooks: RelayHooks): void {
  const peer = { address: client.remoteAddress, port: client.remotePort, family: client.remoteFamily };
  let upstream: Socket | undefined;
  client.once('close', () => upstream?.destroy());
  const attempt = (tries: number) => {
    const socket = ownSocket(new Socket());
    upstream = socket;
    hooks.opened(socket);
    let failure: string | undefined;
    socket.once('error', (err: NodeJS.ErrnoException) => (failure = err.code));
    const failed = () => {
      if (client.destroyed) return;
      if (failure === 'EAGAIN' && tries < BUSY_TRIES) setTimeout(() => !client.destroyed && attempt(tries + 1), BUSY_RETRY_MS * tries);
      else hooks.unreachable(failure);
    };
    socket.once('close', failed);
    socket.connect({ path: address }, () => {
      socket.off('close', failed);
      if (client.destroyed || !peer.address) {
        socket.destroy();
        return void client.destroy();
      }
      socket.write(`PSRELAY1 ${key} ${peer.family === 'IPv6' ? 'IPv6' : 'IPv4'} ${peer.port ?? 0} ${peer.address}\n`);
      socket.write(head);
      const both = () => {
        client.destroy();
        socket.destroy();
      };
      pipeline(client, socket, (err) => err && both());
      pipeline(socket, client, both);
    });
  };
  attempt(1);
}

/**
 * The relay socket's server: each connection's preamble is checked (bounded in size and time;
 * anything else closes it), the client's address is put on the socket, and the connection goes
 * to `intake` with the bytes after the preamble, as an accepted one would.
 */
export function relayServer(key: string, intake: (socket: Socket, head: Buffer) => void): Server {
  const expected = Buffer.from(key, 'latin1');
  let waiting = 0;
  return createServer({ pauseOnConnect: true }, (socket) => {
    ownSocket(socket);
    if (waiting >= PREAMBLE_WAITING_MAX) return void socket.destroy();
    waiting++;
    readFirstLine(socket, PREAMBLE_MAX, PREAMBLE_TIMEOUT_MS, (got) => {
      const lineEnd = got.indexOf(10);
      const m = lineEnd === -1 ? null : PREAMBLE.exec(got.toString('latin1', 0, lineEnd + 1));
      if (!m || !timingSafeEqual(Buffer.from(m[1], 'latin1'), expected)) return void socket.destroy();
      presentClient(socket, m[4], Number(m[3]), m[2]);
      intake(socket, got.subarray(lineEnd + 1));
    }, () => waiting--);
  });
}

/**
 * A relayed connection shows its client where the service reads the peer of a connection
 * (`socket.remoteAddress`: the stream caps, the REST rate limit, engine.io's handshake address,
 * the access log): own properties of this one socket object, which shadow net.Socket's public
 * getters (a unix socket has no peer address of its own, so they would say undefined).
 */
function presentClient(socket: Socket, address: string, port: number, family: string): void {
  Object.defineProperties(socket, {
    remoteAddress: { value: address, enumerable: true },
    remotePort: { value: port, enumerable: true },
    remoteFamily: { value: family, enumerable: true },
  });
}
