import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { SSE_HEADERS } from '../sse/sse-frames';
import { SocketResponse, type StreamResponse } from './socket-response';

type Script = (res: StreamResponse) => void;

/** Everything a client reads from a connection until it closes (or `ms` pass), `Date` made fixed. */
function read(port: number, request: string, ms = 2000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: text.replace(/\r\nDate: [^\r]*\r\n/, '\r\nDate: D\r\n'), closed });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
  });
}

/** A response as its head and its body, the body's chunks joined (where chunks end is Node's to choose); `undefined` if the chunked framing is broken. */
function parts(text: string): { head: string; body: string; lastChunk: boolean } | undefined {
  const at = text.indexOf('\r\n\r\n');
  const head = text.slice(0, at + 4);
  let rest = text.slice(at + 4);
  if (!head.includes('Transfer-Encoding: chunked')) return { head, body: rest, lastChunk: false };
  let body = '';
  for (;;) {
    const line = rest.indexOf('\r\n');
    if (line === -1) return rest === '' ? { head, body, lastChunk: false } : undefined;
    const size = parseInt(rest.slice(0, line), 16);
    if (Number.isNaN(size)) return undefined;
    const data = Buffer.from(rest.slice(line + 2), 'latin1');
    if (data.length < size + 2 || data.toString('latin1', size, size + 2) !== '\r\n') return undefined;
    if (size === 0) return data.length === 2 ? { head, body, lastChunk: true } : undefined;
    body += data.toString('latin1', 0, size);
    rest = data.toString('latin1', size + 2);
  }
}

const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
const close = (server: Server) => new Promise((resolve) => server.close(resolve));

/** The same script on Node's ServerResponse (which closes: `shouldKeepAlive = false`) and on a SocketResponse. */
async function both(script: Script): Promise<[node: string, ours: string, oursClosed: boolean]> {
  const node = createHttpServer((_req, res) => {
    res.shouldKeepAlive = false;
    script(res as StreamResponse & ServerResponse);
  });
  const raw = createServer((socket: Socket) => {
    socket.once('data', () => {
      socket.on('data', () => undefined);
      script(new SocketResponse(socket));
    });
  });
  const request = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
  try {
    const [a, b] = await Promise.all([listen(node).then((p) => read(p, request)), listen(raw).then((p) => read(p, request))]);
    return [a.text, b.text, b.closed];
  } finally {
    node.closeAllConnections();
    raw.close();
    await close(node);
  }
}

describe('SocketResponse', () => {
  it("writes a stream's head and chunks as Node's ServerResponse does, and ends as it does", async () => {
    const [node, ours, closed] = await both((res) => {
      res.setHeader('X-Request-Id', 'r-1');
      res.setHeader('Vary', 'Origin');
      res.writeHead(200, SSE_HEADERS);
      res.write('retry: 1000\n\n');
      res.write(Buffer.from('event: price\ndata: {"p":"é"}\n\n'));
      res.end('retry: 250\n\n');
    });
    // Node joins the chunks written in one tick; the head, the body and the last chunk are the same.
    expect(parts(ours)).toEqual(parts(node));
    expect(parts(ours)).toEqual({
      head: expect.stringMatching(/^HTTP\/1\.1 200 OK\r\nX-Request-Id: r-1\r\nVary: Origin\r\nContent-Type: text\/event-stream; charset=utf-8\r\n[\s\S]*Date: D\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n$/),
      body: Buffer.from('retry: 1000\n\nevent: price\ndata: {"p":"é"}\n\nretry: 250\n\n').toString('latin1'),
      lastChunk: true,
    });
    expect(ours).toContain('\r\n\r\nd\r\nretry: 1000\n\n\r\n');
    expect(closed).toBe(true);
  });

  it("writes an error answer with its length, unchunked, as Node's does", async () => {
    const json = '{"statusCode":429,"code":"TOO_MANY_CONNECTIONS"}';
    const [node, ours, closed] = await both((res) => {
      res.setHeader('X-Request-Id', 'r-2');
      res.writeHead(429, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
      res.end(json);
    });
    expect(ours).toBe(node);
    expect(ours).toContain('HTTP/1.1 429 Too Many Requests\r\n');
    expect(ours).not.toContain('chunked');
    expect(closed).toBe(true);
  });

  it('replaces a header set again, whatever its case', async () => {
    const [node, ours] = await both((res) => {
      res.setHeader('X-A', '1');
      res.setHeader('x-a', '2');
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('');
    });
    expect(ours).toBe(node);
    expect(ours).toContain('x-a: 2\r\n');
  });

  it('refuses a header after the head and a bad header as Node does, and reports its state', () => {
    const socket = { destroyed: false, writableLength: 3 } as unknown as Socket;
    const res = new SocketResponse(socket);
    expect(() => res.setHeader('X-Bad', 'a\nb')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CHAR' }));
    expect(() => res.setHeader('Bad Name', 'a')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_HTTP_TOKEN' }));
    expect(res.headersSent).toBe(false);
    res.writeHead(200, SSE_HEADERS);
    expect(res.headersSent).toBe(true);
    expect(res.chunkedEncoding).toBe(true);
    expect(res.writableLength).toBe(3);
    expect(() => res.setHeader('X-Late', '1')).toThrow(expect.objectContaining({ code: 'ERR_HTTP_HEADERS_SENT' }));
  });

  it("hands on no socket error (as Node's response: the socket's owner has them), but its close and drain", () => {
    const on: string[] = [];
    const socket = { on: (event: string) => on.push(event), off: (event: string) => on.push(`off ${event}`) } as unknown as Socket;
    const res = new SocketResponse(socket);
    const listener = () => undefined;
    for (const event of ['close', 'error', 'drain'] as const) res.on(event, listener).off(event, listener);
    expect(on).toEqual(['close', 'off close', 'drain', 'off drain']);
  });

  it('refuses a second head, and writes nothing for an empty chunk (it would end a chunked body)', () => {
    const writes: unknown[] = [];
    const socket = { destroyed: false, write: (c: unknown) => (writes.push(c), true), cork: () => undefined, uncork: () => undefined } as unknown as Socket;
    const res = new SocketResponse(socket);
    res.writeHead(200, SSE_HEADERS);
    expect(() => res.writeHead(500)).toThrow(expect.objectContaining({ code: 'ERR_HTTP_HEADERS_SENT' }));
    expect(res.write('')).toBe(true);
    expect(writes).toEqual([]);
    expect(res.write('x')).toBe(true);
    expect(String(writes[0])).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n1\r\n$/);
  });

  it('writes nothing to a connection that is gone, and makes no error of it', () => {
    const writes: unknown[] = [];
    const socket = { destroyed: true, write: (c: unknown) => writes.push(c), end: () => writes.push('end'), cork: () => undefined, uncork: () => undefined } as unknown as Socket;
    const res = new SocketResponse(socket);
    res.writeHead(200, SSE_HEADERS);
    expect(res.write('retry: 1\n\n')).toBe(false);
    res.end('retry: 2\n\n');
    expect(res.writableEnded).toBe(true);
    expect(writes).toEqual([]);
  });

  it("hands on its socket's close, and is destroyed with it", async () => {
    const raw = createServer();
    const port = await listen(raw);
    const accepted = new Promise<Socket>((resolve) => raw.once('connection', resolve));
    const client = connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    const res = new SocketResponse(await accepted);
    const closed = new Promise<void>((resolve) => res.on('close', resolve));
    client.destroy();
    await closed;
    expect(res.destroyed).toBe(true);
    await close(raw);
  });
});
