import { createServer as createHttpServer, type Server } from 'node:http';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, Server as NetServer, type ListenOptions, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InheritedSocketError, listenerOn, openPort, procLines, type OpenPort } from './accept-sockets';

/** /proc/net's tables are Linux's (elsewhere the port is bound alone for a moment, as the code says). */
const onLinux = process.platform === 'linux' ? it : it.skip;

describe('openPort (the port taken first; SO_REUSEPORT sockets feeding one HTTP server once it serves)', () => {
  const noError = (err: Error) => {
    throw err;
  };
  const servers: Server[] = [];
  const clients: Socket[] = [];
  const opened: OpenPort[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const p of opened.splice(0)) p.close();
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  async function waitForConnections(server: Server, n: number): Promise<void> {
    const count = () => new Promise<number>((resolve, reject) => server.getConnections((err, c) => (err ? reject(err) : resolve(c))));
    for (let i = 0; i < 100 && (await count()) < n; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await count()).toBe(n);
  }

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
    const listening = await openPort({ port: 0, host: '127.0.0.1', backlog: 511, sockets: 4, inherited: [] }, noError);
    await listening.serve(server);
    const port = listening.port;
    expect((server.address() as { port: number }).port).toBe(port);
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
    await expect(openPort({ port, host: '127.0.0.1', backlog: 511, sockets: 4, inherited: [] }, noError)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await expect(openPort({ port, host: '127.0.0.1', backlog: 511, sockets: 1, inherited: [] }, noError)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(server.listening).toBe(false);
    await new Promise((resolve) => other.close(resolve));
  });

  it('refuses a port another process shares with SO_REUSEPORT (the kernel would let it join), and one held by address or wildcard', async () => {
    for (const [theirs, ours] of [
      ['127.0.0.1', '127.0.0.1'],
      ['0.0.0.0', '127.0.0.1'],
      ['127.0.0.1', '0.0.0.0'],
    ]) {
      const other = createServer();
      await new Promise<void>((resolve) => other.listen({ port: 0, host: theirs, reusePort: true } as ListenOptions, resolve));
      const port = (other.address() as { port: number }).port;
      try {
        // Were it taken after all, its sockets are closed after the test.
        const opening = openPort({ port, host: ours, backlog: 511, sockets: 4, inherited: [] }, noError).then((p) => (opened.push(p), p));
        await expect(opening).rejects.toMatchObject({ code: 'EADDRINUSE', port });
      } finally {
        await new Promise((resolve) => other.close(resolve));
      }
    }
  });

  onLinux('never binds a port asked for without SO_REUSEPORT, even for a moment (a connection the kernel completed there would be reset)', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const listens: unknown[] = [];
    const listen = NetServer.prototype.listen;
    const spy = jest.spyOn(NetServer.prototype, 'listen').mockImplementation(function (this: NetServer, ...args: unknown[]) {
      listens.push(args[0]);
      return listen.apply(this, args as Parameters<typeof listen>);
    });
    try {
      opened.push(await openPort({ port, host: '127.0.0.1', backlog: 511, sockets: 4, inherited: [] }, noError));
    } finally {
      spy.mockRestore();
    }
    expect(listens).toHaveLength(4);
    expect(listens).toEqual(Array.from({ length: 4 }, () => expect.objectContaining({ port, reusePort: true })));
  });

  for (const sockets of [1, 3]) {
    it(`once closed, refuses on every socket of the port, the server's own too, while open requests finish (${sockets} socket${sockets > 1 ? 's' : ''})`, async () => {
      let answer: (() => void) | undefined;
      const server = createHttpServer((_req, res) => {
        res.write('open ');
        answer = () => res.end('and finished');
      });
      servers.push(server);
      const listening = await openPort({ port: 0, host: '127.0.0.1', backlog: 511, sockets, inherited: [] }, noError);
      await listening.serve(server);
      const port = listening.port;
      const open = await fetch(`http://127.0.0.1:${port}/`);
      listening.close();
      expect(server.listening).toBe(false);
      const attempts = await Promise.all(
        Array.from(
          { length: 8 },
          () =>
            new Promise<string>((resolve) => {
              const c = connect(port, '127.0.0.1');
              clients.push(c);
              c.on('connect', () => resolve('connected'));
              c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
            }),
        ),
      );
      expect(attempts).toEqual(Array.from({ length: 8 }, () => 'ECONNREFUSED'));
      answer?.();
      expect(await open.text()).toBe('open and finished');
    });
  }

  it("counts every connection as the server's own: its 'close' waits for them all, on whichever socket they came", async () => {
    const server = createHttpServer((_req, res) => res.end('ok'));
    servers.push(server);
    const listening = await openPort({ port: 0, host: '127.0.0.1', backlog: 511, sockets: 4, inherited: [] }, noError);
    opened.push(listening);
    // Held before it serves, and taken after, on every socket (the kernel spreads them).
    const early = Array.from({ length: 10 }, () => connect(listening.port, '127.0.0.1'));
    clients.push(...early);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await listening.serve(server);
    const late = Array.from({ length: 30 }, () => connect(listening.port, '127.0.0.1'));
    clients.push(...late);
    await Promise.all(late.map((c) => new Promise((resolve) => c.once('connect', resolve))));
    await waitForConnections(server, 40);
    let closed = false;
    server.once('close', () => (closed = true));
    listening.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(false);
    for (const c of [...early, ...late]) c.destroy();
    for (let i = 0; i < 100 && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(true);
  });

  for (const sockets of [1, 3]) {
    it(`holds what connects before the server serves, and serves it then (${sockets} socket${sockets > 1 ? 's' : ''})`, async () => {
      const listening = await openPort({ port: 0, host: '127.0.0.1', backlog: 511, sockets, inherited: [] }, noError);
      // The app is still being built: the requests are sent, and wait.
      const answers = Array.from({ length: 20 }, (_, i) => fetch(`http://127.0.0.1:${listening.port}/${i}`).then((r) => r.text()));
      let answered = 0;
      for (const a of answers) void a.then(() => answered++);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(answered).toBe(0);
      const server = createHttpServer((req, res) => res.end(`served ${req.url}`));
      servers.push(server);
      await listening.serve(server);
      expect(await Promise.all(answers)).toEqual(Array.from({ length: 20 }, (_, i) => `served /${i}`));
      // And what connects later, on whichever socket.
      expect(await (await fetch(`http://127.0.0.1:${listening.port}/later`)).text()).toBe('served /later');
      listening.close();
    });
  }

  it('refuses an inherited fd that is not a listening socket, naming it (a start then fails with that message)', async () => {
    const file = join(tmpdir(), `accept-sockets-${process.pid}`);
    const fd = openSync(file, 'w');
    try {
      const opening = openPort({ port: 0, host: '127.0.0.1', backlog: 511, sockets: 4, inherited: [fd] }, noError);
      await expect(opening).rejects.toBeInstanceOf(InheritedSocketError);
      await expect(opening).rejects.toThrow(
        new RegExp(`the inherited socket at fd ${fd} \\(LISTEN_FDS\\) cannot be served: EINVAL; each must be a listening socket`),
      );
    } finally {
      closeSync(fd);
      unlinkSync(file);
    }
  });

  it('reports a failed accept to its handler instead of throwing', async () => {
    const failures: string[] = [];
    const listening = await openPort({ port: 0, host: '127.0.0.1', backlog: 511, sockets: 2, inherited: [] }, (err) => failures.push(err.message));
    const server = createHttpServer();
    servers.push(server);
    await listening.serve(server);
    // What libuv does when accept() fails (EMFILE): an 'error' on the listening socket.
    server.emit('error', new Error('accept EMFILE'));
    expect(failures).toEqual(['accept EMFILE']);
    listening.close();
  });
});

describe('listenerOn (a listening socket on the port, from /proc/net/tcp and tcp6)', () => {
  // As /proc/net shows them: 127.0.0.1:8080 and 0.0.0.0:3306 listening, then an established
  // connection, after which the kernel lists no listening socket (a line there is not read).
  const TCP = [
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0',
    '   1: 00000000:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0',
    '   2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1',
    '   3: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0',
  ];
  // ::1 on 9090 and ::ffff:10.1.2.3 (IPv4-mapped) on 9091.
  const TCP6 = [
    '   0: 00000000000000000000000001000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0',
    '   1: 0000000000000000FFFF00000302010A:2383 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0',
  ];
  const tables = (file: string) => (file.endsWith('tcp6') ? TCP6 : TCP);

  it.each([
    [8080, '127.0.0.1', true],
    [8080, '0.0.0.0', true],
    [8080, '::', true],
    [8080, '10.0.0.1', false],
    [3306, '10.0.0.1', true],
    [3306, '::1', false],
    [3306, '::', true],
    [8081, '127.0.0.1', false],
    [8081, '0.0.0.0', false],
    [9090, '::1', true],
    [9090, '0:0:0:0:0:0:0:1', true],
    [9090, '127.0.0.1', false],
    [9090, '::', true],
    [9091, '10.1.2.3', true],
    [9091, '::ffff:10.1.2.3', true],
    [9091, '10.1.2.4', false],
  ])('port %i, host %s: %s', (port, host, held) => {
    expect(listenerOn(port, host, tables)).toBe(held);
  });

  it('stops at the first socket that is not listening: a listening one listed after it is not there', () => {
    expect(listenerOn(0x1f91, '127.0.0.1', tables)).toBe(false);
    expect(listenerOn(0x1f91, '127.0.0.1', (file) => (file.endsWith('tcp6') ? [] : [TCP[3]]))).toBe(true);
  });

  it('reads no IPv6 listener where the kernel has no tcp6 table (IPv6 off)', () => {
    const noTcp6 = (file: string) => {
      if (file.endsWith('tcp6')) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return TCP;
    };
    expect(listenerOn(8080, '127.0.0.1', noTcp6)).toBe(true);
    expect(listenerOn(9090, '::1', noTcp6)).toBe(false);
  });

  it('cannot tell for a host name, or without the tables', () => {
    expect(listenerOn(8080, 'localhost', tables)).toBeUndefined();
    expect(
      listenerOn(8080, '127.0.0.1', () => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      }),
    ).toBeUndefined();
  });

  onLinux("reads this machine's own tables, IPv4 and IPv6: a port listened on here is there, and gone once closed", async () => {
    for (const [host, other] of [
      ['127.0.0.1', '127.0.0.2'],
      ['::1', '::2'],
    ]) {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      const port = (server.address() as { port: number }).port;
      expect([listenerOn(port, host), listenerOn(port, '::'), listenerOn(port, other)]).toEqual([true, true, false]);
      await new Promise((resolve) => server.close(resolve));
      expect(listenerOn(port, host)).toBe(false);
    }
  });

  it('reads a table in chunks: a line cut between two reads is whole, the header left out, the last line without its newline kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'proc-lines-'));
    try {
      const file = join(dir, 'tcp');
      writeFileSync(file, ['  sl  local_address rem_address   st', ...TCP].join('\n'));
      for (const chunk of [7, 64, 1 << 16]) expect([...procLines(file, chunk)]).toEqual(TCP);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
