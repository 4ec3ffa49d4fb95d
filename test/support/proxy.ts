import { createServer, connect as tcpConnect, type Socket } from 'net';

/**
 * A TCP proxy on 127.0.0.1:0 in front of the app, so that a test can drop every client
 * connection at once, whatever the transport, as a network outage would, and keep refusing
 * new ones until `restore()`.
 */
export type CuttingProxy = {
  /** `http://127.0.0.1:<proxy port>` */
  url: string;
  /** Destroys every open connection and refuses new ones. */
  cut(): void;
  restore(): void;
  /** How many connections were accepted and passed through so far. */
  readonly accepted: number;
  close(): Promise<void>;
};

export async function startProxy(targetPort: number): Promise<CuttingProxy> {
  const open = new Set<Socket>();
  let down = false;
  let accepted = 0;
  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    accepted += 1;
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      down = true;
      for (const s of open) s.destroy();
    },
    restore() {
      down = false;
    },
    get accepted() {
      return accepted;
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
