import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { listenOn } from './accept-sockets';

describe('listenOn (SO_REUSEPORT sockets feeding one HTTP server)', () => {
  const servers: Server[] = [];
  const clients: Socket[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  /** Opens `n` connections while this process' event loop is held, and counts the server's connections per turn after it. */
  async function burst(server: Server, port: number, n: number): Promise<number[]> {
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    tick();
    const perTurn = new Map<number, number>();
    server.on('connection', () => perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1));
    for (let i = 0; i < n; i++) {
      const c = connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      clients.push(c);
    }
    // The handshakes complete in the kernel while the loop is busy: all n wait in the queues.
    const until = Date.now() + 200;
    while (Date.now() < until);
    for (let i = 0; i < 200 && [...perTurn.values()].reduce((a, b) => a + b, 0) < n; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    ticking = false;
    return [...perTurn.values()];
  }

  it('takes connections on every socket of the port, several in one event-loop turn, all into the HTTP server', async () => {
    const server = createHttpServer((_req, res) => res.end('ok'));
    servers.push(server);
    const listening = await listenOn(server, { port: 0, host: '127.0.0.1', backlog: 511, sockets: 4 });
    const port = (server.address() as { port: number }).port;
    const perTurn = await burst(server, port, 200);
    expect(perTurn.reduce((a, b) => a + b, 0)).toBe(200);
    expect(Math.max(...perTurn)).toBeGreaterThan(1);
    // Requests on a connection from any socket are served by the one server.
    const answer = await fetch(`http://127.0.0.1:${port}/`);
    expect(await answer.text()).toBe('ok');
    listening.close();
  });

  it('refuses a port another server holds (EADDRINUSE), as a plain listen does', async () => {
    const other = createServer();
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as { port: number }).port;
    const server = createHttpServer();
    await expect(listenOn(server, { port, host: '127.0.0.1', backlog: 511, sockets: 4 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await new Promise((resolve) => other.close(resolve));
  });

  it('stops accepting on the extra sockets once closed: with the server closed too, the port refuses', async () => {
    const server = createHttpServer();
    const listening = await listenOn(server, { port: 0, host: '127.0.0.1', backlog: 511, sockets: 3 });
    const port = (server.address() as { port: number }).port;
    listening.close();
    await new Promise((resolve) => server.close(resolve));
    const refused = await new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => resolve('connected'));
      c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
