import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { RequestHead } from './request-head';
import { guardHttpServer } from './socket-guard';
import { installStreamDoor } from './stream-door';

type Taken = { head: RequestHead; socket: Socket };

/** A client connection: what it sends, in parts `gapMs` apart, and everything it reads until it closes or `ms` pass. */
function client(port: number, parts: string[], ms = 1500, gapMs = 60): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('connect', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (part === 'FIN') socket.end();
        else socket.write(part);
      }
    });
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
  });
}

const STREAM = 'GET /stream?x=1 HTTP/1.1\r\nHost: h\r\nLast-Event-ID: 7\r\n\r\n';

describe('installStreamDoor', () => {
  let server: Server;
  let port: number;
  const taken: Taken[] = [];
  const requests: string[] = [];
  const upgrades: string[] = [];

  beforeEach(async () => {
    taken.length = 0;
    requests.length = 0;
    upgrades.length = 0;
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests.push(`${req.method} ${req.url}`);
      res.end(`node ${req.url}`);
    });
    guardHttpServer(server, 300);
    server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      upgrades.push(req.url ?? '');
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    });
    const outcome = installStreamDoor(server, 300, {
      claims: (path) => (path === '/stream' ? true : undefined),
      take: (head, socket) => {
        taken.push({ head, socket });
        socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nours\r\n');
      },
    });
    expect(outcome).toBe('installed');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterEach(async () => {
    for (const t of taken) t.socket.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("takes a stream's whole plain GET off the connection; Node's server never sees it", async () => {
    const got = await client(port, [STREAM], 400);
    expect(taken.map((t) => t.head)).toEqual([{ method: 'GET', url: '/stream?x=1', headers: { host: 'h', 'last-event-id': '7' } }]);
    expect(requests).toEqual([]);
    expect(got.text).toContain('4\r\nours\r\n');
    expect((taken[0].socket as Socket & { parser?: unknown }).parser).toBeFalsy();
  });

  it('gives Node every other request, with the bytes already read, and keeps the connection as Node keeps it', async () => {
    const got = await client(port, ['GET /other HTTP/1.1\r\nHost: h\r\n\r\n', 'GET /stream HTTP/1.1\r\nHost: h\r\n\r\n'], 600);
    // The second request on the connection is Node's too: the door reads a connection's first bytes only.
    expect(requests).toEqual(['GET /other', 'GET /stream']);
    expect(taken).toEqual([]);
    expect(got.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*node \/other[\s\S]*HTTP\/1\.1 200 OK\r\n[\s\S]*node \/stream$/);
  });

  it.each([
    ['a head split over two reads', ['GET /stream HTTP/1.1\r\n', 'Host: h\r\n\r\n']],
    ['two requests pipelined', ['GET /stream HTTP/1.1\r\nHost: h\r\n\r\nGET /stream?b HTTP/1.1\r\nHost: h\r\n\r\n']],
    ['a POST', ['POST /stream HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab']],
    ['HTTP/1.0', ['GET /stream HTTP/1.0\r\nHost: h\r\n\r\n']],
  ])('gives Node %s of a stream path, which it answers in order', async (_, parts) => {
    const got = await client(port, parts, 600);
    expect(taken).toEqual([]);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((r) => r.includes('/stream'))).toBe(true);
    expect(got.text.match(/node \/stream/g)?.length).toBe(requests.length);
  });

  it("gives Node an upgrade, and what the client sends after it reaches the upgrade's owner however late it starts reading", async () => {
    const late = new Promise<string>((resolve) => {
      server.removeAllListeners('upgrade');
      server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
        taken.push({ head: { method: 'GET', url: '/ws', headers: {} }, socket });
        // As the edge router does: the upgrade's handler runs a few ms later (the joins are gathered).
        setTimeout(() => {
          let got = '';
          socket.on('data', (d: Buffer) => {
            got += d.toString('latin1');
            if (got === 'LATER') resolve(got);
          });
        }, 60);
      });
    });
    const got = client(port, ['GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 'LATER'], 400, 10);
    expect(await late).toBe('LATER');
    await got;
    // The socket was Node's upgrade's, not the door's (recorded above only to be closed after).
    expect(taken.map((t) => t.head.url)).toEqual(['/ws']);
  });

  it("gives Node an upgrade of a stream path (its 'upgrade' event)", async () => {
    await client(port, ['GET /stream HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'], 400);
    expect(upgrades).toEqual(['/stream']);
    expect(taken).toEqual([]);
  });

  it("gives Node what its parser refuses, answered by the server's clientError handler", async () => {
    const got = await client(port, ['GET /stream HTTP/1.1\r\nBad Header: 1\r\n\r\n'], 800);
    expect(got.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*"code":"MALFORMED_REQUEST"/);
    expect(got.closed).toBe(true);
  });

  it('answers 408 REQUEST_TIMEOUT to a connection that sends nothing within the head deadline', async () => {
    const started = Date.now();
    const got = await client(port, [], 3000);
    expect(got.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"code":"REQUEST_TIMEOUT"/);
    expect(got.closed).toBe(true);
    // 300 ms, checked once a second.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('closes a connection whose client ends its side before sending anything', async () => {
    const got = await client(port, ['FIN'], 1000);
    expect(got).toEqual({ text: '', closed: true });
  });

  it("closes the connections still waiting for their first bytes when the server closes (as Node's idle ones)", async () => {
    const waiting = client(port, [], 2500);
    await new Promise((r) => setTimeout(r, 100));
    const stream = client(port, [STREAM], 2500);
    await new Promise((r) => setTimeout(r, 100));
    server.close();
    expect(await waiting).toEqual({ text: '', closed: true });
    // A taken stream is its owner's to end.
    expect(taken).toHaveLength(1);
    expect(taken[0].socket.destroyed).toBe(false);
    taken[0].socket.destroy();
    expect((await stream).closed).toBe(true);
  });

  it('reads and drops what a stream client sends after its request, and closes the connection when the client ends its side', async () => {
    const got = await client(port, [STREAM, 'junk', 'FIN'], 1500);
    expect(taken).toHaveLength(1);
    expect(got.closed).toBe(true);
    expect(requests).toEqual([]);
  });

  it("leaves a head larger than the server's maxHeaderSize to Node, which refuses it", async () => {
    const small = createServer({ maxHeaderSize: 100 }, (_req, res) => res.end('node'));
    guardHttpServer(small, 300);
    const took: RequestHead[] = [];
    installStreamDoor(small, 300, { claims: () => true, take: (head, socket) => (took.push(head), socket.destroy()) });
    await new Promise<void>((resolve) => small.listen(0, '127.0.0.1', resolve));
    try {
      const got = await client((small.address() as { port: number }).port, [`GET /stream HTTP/1.1\r\nHost: h\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`], 1000);
      expect(took).toEqual([]);
      expect(got.text).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n[\s\S]*"code":"HEADERS_TOO_LARGE"/);
    } finally {
      small.closeAllConnections();
      await new Promise((resolve) => small.close(resolve));
    }
  });

  it("is not installed on a server without Node's connection listener", () => {
    const bare = createServer();
    bare.removeAllListeners('connection');
    expect(installStreamDoor(bare, 300, { claims: () => true, take: () => undefined })).toBe('unknown node');
  });
});
