import type { ListenOptions, Server } from 'node:net';

/**
 * `server.listen(...)` as a promise: on `options` (a port, a path), or on `handle`, a listening
 * socket another server made or an inherited one's `{ fd }` (Node's `server.listen(handle,
 * backlog)`: this server takes it over). Resolves once it listens, rejects with the error that stopped it (EADDRINUSE, EACCES);
 * the rejecting handler is removed once it listens, so that the server's later errors (a failed
 * accept) go to the caller's own handler. `reusePort` (SO_REUSEPORT, Node 22.12 and 23.1 on)
 * is not in the installed @types/node yet.
 */
export function listen(server: Server, options: (ListenOptions & { reusePort?: boolean }) | { handle: Server | { fd: number }; backlog: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if ('handle' in options) server.listen(options.handle, options.backlog, listening);
    else server.listen(options, listening);
  });
}
