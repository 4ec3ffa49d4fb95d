import { createServer, type Server as NetServer } from 'node:net';
import type { Server } from 'node:http';
import { listen } from '../util/listen';

export type ListenOptions = { port: number; host: string; backlog: number; sockets: number };

/**
 * The HTTP server listening on several sockets of the same port (SO_REUSEPORT), all feeding it.
 *
 * Node (libuv 1.45 on) accepts one connection per listening socket per event-loop turn. With one
 * socket, a thousand clients arriving together (a reconnect storm, a load balancer opening its
 * pool) are taken one per turn, and a turn beside 15,000 streams is a ~10 ms slice of their
 * write pass: the last of them waits seconds, and the kernel's queue (`backlog`, capped by
 * net.core.somaxconn) overflows, dropping SYNs that clients resend only 1 s and 3 s later. With
 * `sockets` of them the kernel spreads new connections over as many queues, and each turn takes
 * one from each. The extra sockets hand their connections to the HTTP server's own 'connection'
 * handling (socket-guard.ts owns each one there first).
 *
 * The port is first bound without SO_REUSEPORT for a moment, so that a port another process
 * holds is still refused (EADDRINUSE) rather than silently shared. `sockets` 1: a plain listen.
 */
export async function listenOn(server: Server, options: ListenOptions): Promise<{ close(): void }> {
  const { host, backlog, sockets } = options;
  if (sockets <= 1) {
    await listen(server, { port: options.port, host, backlog });
    return { close: () => undefined };
  }
  const port = await probeFree(options.port, host);
  await listen(server, { port, host, backlog, reusePort: true });
  const bound = (server.address() as { port: number }).port;
  const extra: NetServer[] = [];
  try {
    for (let i = 1; i < sockets; i++) {
      // As the HTTP server's own sockets are made (http.Server's net options: half-open kept, no Nagle).
      const acceptor = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => server.emit('connection', socket));
      extra.push(acceptor);
      await listen(acceptor, { port: bound, host, backlog, reusePort: true });
    }
  } catch (err) {
    for (const acceptor of extra) acceptor.close();
    throw err;
  }
  return {
    close: () => {
      for (const acceptor of extra) acceptor.close();
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
