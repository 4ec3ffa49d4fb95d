import { createServer, type Server as NetServer, type Socket } from 'node:net';
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
 * handling. The port is first bound without SO_REUSEPORT for a moment, so that a port another
 * process holds is still refused (EADDRINUSE) rather than silently shared. `sockets` 1: one
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
      const port = await probeFree(options.port, host);
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
