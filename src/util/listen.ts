import type { ListenOptions, Server } from 'node:net';

/**
 * `server.listen(options)` as a promise: resolves once it listens, rejects with the error that
 * stopped it (EADDRINUSE, EACCES); the rejecting handler is removed once it listens, so that
 * the server's later errors (a failed accept) go to the caller's own handler. `reusePort`
 * (SO_REUSEPORT, Node 22.12 and 23.1 on) is not in the installed @types/node yet.
 */
export function listen(server: Server, options: ListenOptions & { reusePort?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
