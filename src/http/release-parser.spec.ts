import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { MAX_DROPPED_BYTES, releaseParser, type ReleaseOutcome } from './release-parser';

/** Node's pool of free HTTP parsers (a FreeList: `list` holds the free ones). */
const pool = (createRequire(__filename)('_http_common') as { parsers: { list: unknown[] } }).parsers;

type Served = { req: IncomingMessage; res: ServerResponse; released: ReleaseOutcome | undefined; pooledBefore: number; pooledAfter: number; done?: boolean };

describe('releaseParser', () => {
  let server: Server;
  let port: number;
  let served: Served[];
  let keepAlive: boolean;
  const clients: Socket[] = [];

  beforeEach(async () => {
    served = [];
    keepAlive = false;
    server = createServer((req, res) => {
      if (req.url === '/plain') return void res.end('plain');
      // A response that holds the connection without giving its parser back.
      if (req.url === '/hold') return void res.writeHead(200, { 'Content-Type': 'text/plain' }).write('held');
      res.shouldKeepAlive = keepAlive;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('retry: 1000\n\n');
      // As in the service, later than the request's event (Node's parser may still be reading the rest of its input then).
      const entry: Served = { req, res, released: undefined, pooledBefore: 0, pooledAfter: 0 };
      served.push(entry);
      setImmediate(() => {
        entry.pooledBefore = pool.list.length;
        entry.released = releaseParser(req, res);
        entry.pooledAfter = pool.list.length;
        entry.done = true;
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  /** A raw client: what it has read so far, and whether the server ended the connection. */
  function client(request: string) {
    const socket = connect(port, '127.0.0.1');
    clients.push(socket);
    const seen = { text: '', ended: false };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (seen.text += chunk));
    socket.on('end', () => (seen.ended = true));
    socket.write(request);
    return { socket, seen };
  }

  async function until(check: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!check()) throw new Error(`timed out waiting for ${what}`);
  }

  it('gives the parser back to the pool; the stream still writes, says Connection: close, and drops what the client sends after its request', async () => {
    const { socket, seen } = client('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => served[0]?.done === true && seen.text.includes('retry: 1000'), 'the head');
    const [s] = served;
    expect(s!.released).toBe('released');
    expect((s!.req.socket as Socket & { parser: unknown }).parser).toBeNull();
    expect(s!.pooledAfter).toBe(Math.min(s!.pooledBefore + 1, 1000));
    expect(seen.text).toMatch(/\r\nConnection: close\r\n/i);
    // Bytes after the request (here: a request) are read and dropped: no second response, no error.
    socket.write('GET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    s!.res.write('data: after\n\n');
    await until(() => seen.text.includes('data: after'), 'a frame after the dropped bytes');
    expect(seen.text).not.toContain('plain');
    expect(served).toHaveLength(1);
    expect(s!.res.destroyed).toBe(false);
  });

  it('closes the connection of a client that sends more than MAX_DROPPED_BYTES after its request', async () => {
    const { socket } = client('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => served[0]?.done === true, 'the request');
    expect(served[0]!.released).toBe('released');
    const closed = once(served[0]!.res, 'close');
    socket.write(Buffer.alloc(MAX_DROPPED_BYTES / 2, 0x61));
    await new Promise((r) => setTimeout(r, 50));
    expect(served[0]!.res.destroyed).toBe(false);
    socket.write(Buffer.alloc(MAX_DROPPED_BYTES, 0x61));
    await closed;
  });

  it("closes the response when the client ends its side (as Node's own handler did)", async () => {
    const { socket } = client('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => served[0]?.done === true, 'the request');
    const closed = once(served[0]!.res, 'close');
    socket.end();
    await closed;
    expect(served[0]!.req.socket.destroyed).toBe(true);
  });

  it('closes the connection when the response ends', async () => {
    const { seen } = client('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => served[0]?.done === true && seen.text.includes('retry'), 'the head');
    served[0]!.res.end('event: closing\ndata: {}\n\n');
    await until(() => seen.ended, 'the end of the connection');
    expect(seen.text).toContain('0\r\n\r\n');
  });

  it('keeps the parser of a response that keeps its connection alive', async () => {
    keepAlive = true;
    const { seen } = client('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => served[0]?.done === true && seen.text.includes('retry'), 'the head');
    expect(served[0]!.released).toBe('connection in use');
    expect((served[0]!.req.socket as Socket & { parser: unknown }).parser).not.toBeNull();
  });

  it('keeps the parser when another response owns the connection (a pipelined request)', async () => {
    const { seen } = client('GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => served.length === 1 && served[0]!.done === true && seen.text.includes('held'), 'the second request');
    // The stream's request was read behind the held response, which owns the socket.
    expect(served[0]!.req.url).toBe('/stream');
    expect(served[0]!.released).toBe('connection in use');
    expect((served[0]!.req.socket as Socket & { parser: unknown }).parser).not.toBeNull();
  });
});
