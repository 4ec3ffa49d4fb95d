import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { openWs, type WsSend } from '../bench/clients';
import { waitFor } from './support/wait';

/** What the bench's raw WebSocket client (bench/clients.ts openWs) reported. */
type Seen = { opened: number; texts: string[]; hints: number[]; closed: string[]; bytes: number };

/** Every client and raw server socket of a test, closed after it. */
const opened: { close(): void }[] = [];

function client(port: number, path = '/feed', onOpen: (ws: WsSend) => void = () => undefined): { seen: Seen; conn: { close(): void } } {
  const seen: Seen = { opened: 0, texts: [], hints: [], closed: [], bytes: 0 };
  const conn = openWs(
    { host: '127.0.0.1', port },
    path,
    {
      open: () => undefined,
      tick: () => undefined,
      reset: () => undefined,
      close: (reason) => seen.closed.push(reason),
      bytes: (n) => (seen.bytes += n),
      hint: (ms) => seen.hints.push(ms),
    },
    (ws) => {
      seen.opened++;
      onOpen(ws);
    },
    (_ws, s) => seen.texts.push(s),
  );
  opened.push(conn);
  return { seen, conn };
}

const listening = async <T extends Server | NetServer>(server: T): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

/** A server frame (unmasked), as a server writes it. */
function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const first = (fin ? 0x80 : 0) | opcode;
  if (len < 126) return Buffer.concat([Buffer.from([first, len]), payload]);
  if (len < 65536) return Buffer.concat([Buffer.from([first, 126, len >> 8, len & 0xff]), payload]);
  const head = Buffer.alloc(10);
  head[0] = first;
  head[1] = 127;
  head.writeUInt32BE(len, 6);
  return Buffer.concat([head, payload]);
}

/** The first client frame in `bytes`: its first byte (FIN and opcode) and its payload, unmasked. */
function clientFrame(bytes: Buffer): { first: number; payload: string } {
  const len = bytes[1]! & 0x7f;
  const mask = bytes.subarray(2, 6);
  const payload = Buffer.from(bytes.subarray(6, 6 + len).map((b, i) => b ^ mask[i & 3]!));
  return { first: bytes[0]!, payload: payload.toString() };
}

/** The 101's Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2; its example is checked below). */
const acceptOf = (key: string) => createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

/** A raw TCP server that reads the upgrade request and lets the test answer it byte for byte; `sent` is what the client wrote after its request. */
async function rawServer(answer: (socket: Socket, key: string) => void): Promise<{ port: number; server: NetServer; sent: Buffer[] }> {
  const sent: Buffer[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    opened.push({ close: () => socket.destroy() });
    let head = '';
    socket.on('data', (d: Buffer) => {
      if (head.includes('\r\n\r\n')) return void sent.push(d);
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      answer(socket, /\r\nsec-websocket-key: *([^\r]*)/i.exec(head)?.[1] ?? '');
    });
  });
  return { port: await listening(server), server, sent };
}

describe("the bench's raw WebSocket client (bench/clients.ts openWs) against a real server", () => {
  let http: Server;
  let wss: WebSocketServer;
  let port: number;
  const servers: NetServer[] = [];
  /** What the `ws` server got from the client: its messages and its pongs. */
  const got: { messages: string[]; pongs: string[] } = { messages: [], pongs: [] };
  let onConnection: (ws: WebSocket) => void = () => undefined;

  beforeAll(async () => {
    http = createHttpServer();
    wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    wss.on('connection', (ws) => {
      ws.on('message', (data) => got.messages.push(String(data)));
      ws.on('pong', (data) => got.pongs.push(String(data)));
      onConnection(ws);
    });
    port = await listening(http);
  });

  afterEach(() => {
    got.messages = [];
    got.pongs = [];
    for (const o of opened.splice(0)) o.close();
    for (const s of servers.splice(0)) s.close();
  });

  afterAll(async () => {
    wss.close();
    await new Promise((resolve) => http.close(resolve));
  });

  it('reads text frames of every length encoding and fragmented ones, answers a ping, skips binary, and sends masked text', async () => {
    const big = 'x'.repeat(70_000); // a 64-bit length, both ways
    const mid = 'y'.repeat(300); // a 16-bit length
    onConnection = (ws) => {
      ws.send('short');
      ws.send(mid);
      ws.send(big);
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
      ws.send('frag', { fin: false });
      ws.send('mented', { fin: true });
      ws.ping('are you there');
    };
    const { seen, conn } = client(port, '/feed', (ws) => {
      ws.send('hello from the client');
      ws.send(mid);
      ws.send(big);
    });
    await waitFor(() => seen.texts.length === 4 && got.pongs.length === 1 && got.messages.length === 3, 5000);
    expect(seen.opened).toBe(1);
    expect(seen.texts).toEqual(['short', mid, big, 'fragmented']);
    expect(got.pongs).toEqual(['are you there']);
    expect(got.messages).toEqual(['hello from the client', mid, big]);
    expect(seen.bytes).toBeGreaterThan(70_000 + 300);
    // A close of its own is not reported: the subscriber asked for it.
    conn.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.closed).toEqual([]);
  });

  it("reports the close frame's code once the connection closes, with a 1012's reconnect hint", async () => {
    onConnection = (ws) => ws.close(1012, 'service restart; reconnect and resume; retry=750');
    const { seen } = client(port);
    await waitFor(() => seen.closed.length > 0, 5000);
    expect(seen).toMatchObject({ opened: 1, hints: [750], closed: ['ws_close_1012'] });
  });

  it('reports a connection closed without a close frame as 1006', async () => {
    onConnection = (ws) => ws.terminate();
    const { seen } = client(port);
    await waitFor(() => seen.closed.length > 0, 5000);
    expect(seen).toMatchObject({ opened: 1, closed: ['ws_close_1006'] });
  });

  it('reads frames split anywhere: a 101 and its frames written a byte at a time, a ping between fragments answered', async () => {
    expect(acceptOf('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const large = 'l'.repeat(65_600); // a 64-bit length
    const { port: rawPort, server, sent } = await rawServer((socket, key) => {
      const bytes = Buffer.concat([
        Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(key)}\r\n\r\n`),
        frame(1, Buffer.from('one')),
        frame(1, Buffer.from('t'.repeat(200))),
        frame(1, Buffer.from('tw'), false),
        frame(9, Buffer.from('ping between')),
        frame(0, Buffer.from('o')),
      ]);
      let i = 0;
      const drip = setInterval(() => {
        if (socket.destroyed || i >= bytes.length) {
          clearInterval(drip);
          // Then a 64-bit length, its 10-byte header split from its payload.
          const big = frame(1, Buffer.from(large));
          socket.write(big.subarray(0, 5));
          setTimeout(() => socket.write(big.subarray(5)), 20);
          return;
        }
        socket.write(bytes.subarray(i, ++i));
      }, 1);
    });
    servers.push(server);
    const { seen } = client(rawPort);
    await waitFor(() => seen.texts.length === 4, 10_000);
    expect(seen.texts).toEqual(['one', 't'.repeat(200), 'two', large]);
    expect(clientFrame(Buffer.concat(sent))).toEqual({ first: 0x8a, payload: 'ping between' });
  });

  it("ends a refusal as http_<status>_<code>, with or without a Content-Length, and without opening", async () => {
    const body = JSON.stringify({ statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many' });
    // Left open: the Content-Length alone ends it (the service's refusals have one).
    const sized = await rawServer((socket) => socket.write(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
    const unsized = await rawServer((socket) => socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n{"code":"FORBIDDEN_ORIGIN"}`));
    servers.push(sized.server, unsized.server);
    const a = client(sized.port);
    const b = client(unsized.port);
    await waitFor(() => a.seen.closed.length > 0 && b.seen.closed.length > 0, 5000);
    expect(a.seen).toMatchObject({ opened: 0, closed: ['http_429_TOO_MANY_CONNECTIONS'] });
    expect(b.seen).toMatchObject({ opened: 0, closed: ['http_403_FORBIDDEN_ORIGIN'] });
  });

  it('refuses a 101 with the wrong accept, and a masked frame from the server', async () => {
    const wrong = await rawServer((socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IGl0\r\n\r\n'));
    const masked = await rawServer((socket, key) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(key)}\r\n\r\n`);
      socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]));
    });
    servers.push(wrong.server, masked.server);
    const a = client(wrong.port);
    const b = client(masked.port);
    await waitFor(() => a.seen.closed.length > 0 && b.seen.closed.length > 0, 5000);
    expect(a.seen).toMatchObject({ opened: 0, closed: ['ws_bad_accept'] });
    expect(b.seen).toMatchObject({ opened: 1, texts: [], closed: ['ws_masked_frame'] });
  });
});
