import { closeSync, openSync, readSync } from 'node:fs';
import { createServer, isIP, type Server as NetServer, type Socket } from 'node:net';
import { endianness } from 'node:os';
import type { Server } from 'node:http';
import { listen } from '../util/listen';
import { ownSocket } from './socket-guard';

/** `inherited` not empty: serve the listening sockets at these fds (systemd's socket activation) instead of binding `port` on `sockets` sockets. */
export type PortOptions = { port: number; host: string; backlog: number; sockets: number; inherited: readonly number[] };

/** The service's port, taken before the app is built (`openPort`), served by the app's HTTP server once it is up. */
export type OpenPort = {
  /** The port bound: the one asked for, or the kernel's choice for 0 (inherited sockets: theirs). */
  readonly port: number;
  /** Where it listens, as a URL (inherited sockets: theirs; a Unix socket's is its path). */
  readonly url: string;
  /** From now on `server` serves: it takes the first socket over, and every connection held so far and every later one of the other sockets goes to it. */
  serve(server: Server): Promise<void>;
  /**
   * Stops accepting on every socket of the port, the server's own too (its open connections stay;
   * its idle keep-alive ones close, as with any `server.close()`): from then on the port refuses.
   */
  close(): void;
};

/** An inherited socket (LISTEN_FDS) the service cannot serve: a deployment's mistake, refused at start (exit 78). */
export class InheritedSocketError extends Error {}

/**
 * Takes the port at once, before the app is built, on `sockets` listening sockets
 * (SO_REUSEPORT) that all feed the app's HTTP server once it serves.
 *
 * **At once:** a process restarted after a crash spends most of a second (more under load)
 * loading its modules and building the app. Its subscribers reconnect meanwhile: refused, each
 * retries on its own backoff, and the retries take CPU the start needs. With the port taken
 * first, their connections complete in the kernel and wait; what the sockets accept before the
 * app is up is held (paused, owned) and handed to the HTTP server when it serves.
 *
 * **Several sockets:** Node (libuv 1.45 on) accepts one connection per listening socket per
 * event-loop turn. With one socket, a thousand clients arriving together (a reconnect storm, a
 * load balancer opening its pool) are taken one per turn, and a turn beside 15,000 streams is a
 * ~10 ms slice of their write pass: the last of them waits seconds, and the kernel's queue
 * (`backlog`, capped by net.core.somaxconn) overflows, dropping SYNs that clients resend only
 * 1 s and 3 s later. With `sockets` of them the kernel spreads new connections over as many
 * queues, and each turn takes one from each. The first socket becomes the HTTP server's own
 * (`server.listen(handle)`); the others hand their connections to its `'connection'`
 * handling. A port another process listens on is still refused (EADDRINUSE) rather than
 * silently shared (the kernel lets a process of the same user join its SO_REUSEPORT sockets):
 * on Linux the listening sockets of /proc/net/tcp and tcp6 are looked at first (`listenerOn`);
 * where they cannot be read, or `host` is a name, the port is bound alone for a moment first.
 * (That moment was the Linux way too, and a connection the kernel completed in it was reset
 * when it closed: a restarted process' subscribers, reconnecting, met it.) `sockets` 1: one
 * plain socket.
 *
 * **Inherited sockets** (`inherited`, systemd's socket activation): a supervisor made the
 * listening sockets and keeps them open across the process' restarts, so what connects while no
 * process runs (the restart after a crash) waits in their queues instead of being refused. They
 * are served as the sockets above (the first becomes the HTTP server's); closing them at shutdown
 * closes this process' copy only: the supervisor's keep queueing for the next process. An fd
 * that is not a socket Node can listen on (a file, a closed fd) fails the start with an
 * `InheritedSocketError` naming it. (A TCP socket that is not bound yet cannot be told apart
 * here: Node binds it to a port of the kernel's choice, which the start-up line shows.)
 *
 * A failed accept (EMFILE) is an `'error'` of its socket: reported to `onAcceptError`, never
 * thrown; the next accept may succeed.
 */
export async function openPort(options: PortOptions, onAcceptError: (err: Error) => void): Promise<OpenPort> {
  const { host, backlog, sockets } = options;
  let server: Server | undefined;
  const held = new Set<Socket>();
  const hand = (to: Server, socket: Socket) => {
    // Counted as the server's own, as Node counts what it accepts itself (its socket then counts
    // itself out when it closes): the server's 'close' waits for every connection, as its
    // listeners expect. engine.io's closes every Socket.IO client on it, without a word: counted
    // only on the server's own socket, 'close' came as soon as the port closed at shutdown, and
    // Socket.IO subscribers lost their reconnect hint.
    (to as unknown as { _connections: number })._connections++;
    (socket as unknown as { _server: Server })._server = to;
    to.emit('connection', socket);
    socket.resume();
  };
  const take = (socket: Socket) => {
    ownSocket(socket);
    if (server !== undefined) return hand(server, socket);
    held.add(socket);
    socket.once('close', () => held.delete(socket));
  };
  const acceptors: NetServer[] = [];
  const acceptor = () => {
    // As the HTTP server's own sockets are made (http.Server's net options: half-open kept, no
    // Nagle), paused: the HTTP server reads them once it has them.
    const a = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, take);
    acceptors.push(a);
    return a;
  };
  try {
    if (options.inherited.length > 0) {
      for (const fd of options.inherited) {
        await listen(acceptor(), { handle: { fd }, backlog }).catch((err: NodeJS.ErrnoException) => {
          throw new InheritedSocketError(`the inherited socket at fd ${fd} (LISTEN_FDS) cannot be served: ${err.code ?? err.message}; each must be a listening socket`);
        });
      }
    } else if (sockets <= 1) await listen(acceptor(), { port: options.port, host, backlog });
    else {
      // Port 0: the kernel's choice, which nobody can be connecting to yet.
      const taken = options.port === 0 ? undefined : listenerOn(options.port, host);
      if (taken) throw addressInUse(host, options.port);
      const port = taken === false ? options.port : await probeFree(options.port, host);
      await listen(acceptor(), { port, host, backlog, reusePort: true });
      const bound = (acceptors[0].address() as { port: number }).port;
      for (let i = 1; i < sockets; i++) await listen(acceptor(), { port: bound, host, backlog, reusePort: true });
    }
  } catch (err) {
    for (const a of acceptors) a.close();
    throw err;
  }
  for (const a of acceptors) a.on('error', onAcceptError);
  const [first, ...others] = acceptors;
  const address = first.address();
  // A TCP socket's address, or null for a Unix socket's path (an inherited one may be either).
  const tcp = typeof address === 'object' ? address : null;
  return {
    port: tcp?.port ?? 0,
    url: tcp ? `http://${tcp.family === 'IPv6' ? `[${tcp.address}]` : tcp.address}:${tcp.port}` : `unix:${String(address)}`,
    serve: async (to) => {
      // The HTTP server takes the first socket's handle (its later connections are its own, not
      // paused); what the first socket accepted before stays held and is handed over below.
      await listen(to, { handle: first, backlog });
      to.on('error', onAcceptError);
      server = to;
      for (const socket of held) hand(to, socket);
      held.clear();
    },
    close: () => {
      for (const a of others) a.close();
      if (server === undefined) first.close();
      else if (server.listening) server.close();
    },
  };
}

/** Binds the port alone (EADDRINUSE if anyone holds it) and lets it go; port 0 gets one from the kernel. */
async function probeFree(port: number, host: string): Promise<number> {
  const probe = createServer();
  await listen(probe, { port, host, backlog: 1 });
  const free = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return free;
}

/** The error a listen on a port another socket holds fails with (as Node's own, for the caller's handling). */
function addressInUse(host: string, port: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`listen EADDRINUSE: address already in use ${host}:${port}`), { code: 'EADDRINUSE', errno: -98, syscall: 'listen', address: host, port });
}

/** An address as /proc/net shows it and as a host is written, the same: IPv6, IPv4 as IPv4-mapped, in the URL parser's canonical text. */
function canonical(address: string): string {
  return new URL(`http://[${isIP(address) === 4 ? `::ffff:${address}` : address}]`).hostname;
}
const ANY = canonical('::');
const ANY_IPV4 = canonical('0.0.0.0');
/** IPv4, or IPv4-mapped IPv6 (::ffff:0:0/96), in canonical text. */
const ipv4 = (address: string) => /^\[::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}\]$/.test(address);

/**
 * Whether binds of the two (canonical) addresses on one port meet: the same address; `::`
 * against anything (dual-stack); 0.0.0.0 against any IPv4 address. That covers every pair of
 * sockets that could share an SO_REUSEPORT group, which is what `listenerOn` looks for; a conflict
 * between families it leaves out, the bind itself still reports.
 */
function meet(a: string, b: string): boolean {
  if (a === b || a === ANY || b === ANY) return true;
  return (a === ANY_IPV4 && ipv4(b)) || (b === ANY_IPV4 && ipv4(a));
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** A /proc/net/tcp or tcp6 address (hex, each 32-bit word in the host's byte order) as text. */
function procAddress(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((word) => (LITTLE_ENDIAN ? Buffer.from(word, 'hex').reverse() : Buffer.from(word, 'hex')));
  if (words.length === 1) return [...words[0]].join('.');
  const bytes = Buffer.concat(words);
  return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
}

/**
 * A /proc/net table's lines after its header, read as they are asked for: the kernel lists its
 * listening sockets first and then the rest (established, TIME_WAIT: tens of thousands after a
 * restart), which `listenerOn` stops short of. Opened at once (a missing table throws here);
 * closed when the caller's loop ends.
 */
export function procLines(file: string, chunkSize = 16 * 1024): Iterable<string> {
  const fd = openSync(file, 'r');
  return (function* () {
    try {
      const chunk = Buffer.alloc(chunkSize);
      let rest = '';
      let header = true;
      for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) {
        const lines = (rest + chunk.toString('latin1', 0, n)).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          if (header) header = false;
          else yield line;
        }
      }
      if (rest !== '' && !header) yield rest;
    } finally {
      closeSync(fd);
    }
  })();
}

/**
 * Whether a socket of this network namespace listens on `port` where a bind of `host` would
 * meet it (`meet`: the same address, or a wildcard that covers it). From /proc/net/tcp and
 * tcp6, their listening sockets only (`lines`: a table's lines after its header, for tests);
 * `undefined` when they cannot be read (not Linux) or `host` is a name, not an address. An
 * IPv6-only `::` counts against an IPv4 host too, which a bind would allow: /proc does not show
 * the flag. It relies on Linux's order (listening sockets first, since 4.4; Node 22 needs 4.18):
 * a /proc that lists them otherwise (an emulation) could hide a listener, and the bind would
 * then join another process' SO_REUSEPORT sockets, as it would without this check.
 */
export function listenerOn(port: number, host: string, lines: (file: string) => Iterable<string> = procLines): boolean | undefined {
  if (isIP(host) === 0) return undefined;
  try {
    const ours = canonical(host);
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let table: Iterable<string>;
      try {
        table = lines(file);
      } catch (err) {
        // No tcp6 where IPv6 is off: no IPv6 listener either.
        if (file.endsWith('6') && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      for (const line of table) {
        // sl local_address rem_address st ...; st 0A is LISTEN, and the listening sockets come first.
        const [, local, , state] = line.trim().split(/\s+/);
        if (state !== '0A') break;
        const [hex, portHex] = local.split(':');
        if (parseInt(portHex, 16) !== port) continue;
        if (meet(canonical(procAddress(hex)), ours)) return true;
      }
    }
  } catch {
    return undefined;
  }
  return false;
}
