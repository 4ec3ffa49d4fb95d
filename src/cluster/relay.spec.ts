import { once } from 'node:events';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { connect, createServer, Socket, type Server as NetServer } from 'node:net';
import { relay, relayAddress, relayServer } from './relay';
import { firstBytes, PendingConnections } from './routing';

const KEY = '0123456789abcdef0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A socket's 'close', whatever error came before it (events.once would reject on an 'error'). */
const closed = (s: Socket) => new Promise((resolve) => (s.closed ? resolve(null) : s.once('close', resolve)));

/**
 * Two "workers" in one process: the front accepts on TCP and relays every connection (as a
 * worker does with a request of another worker's session); the owner takes them on its relay
 * socket and feeds its HTTP server, as WorkerLink.intake does.
 */
async function pair(target?: string) {
  const address = relayAddress(process.pid, KEY + String(Math.random()));
  const owner = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.url === '/hold') return; // answered never: the client goes away
      const s = req.socket;
      res.end(JSON.stringify({ url: req.url, body, address: s.remoteAddress, port: s.remotePort, family: s.remoteFamily }));
    });
  });
  owner.on('upgrade', (req, socket: Socket, head: Buffer) => {
    // An upgraded connection echoes what it gets: bytes after the 101 flow both ways.
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
  owner.emit('listening');
  const intakes: Socket[] = [];
  const relays = relayServer(KEY, (socket, head) => {
    intakes.push(socket);
    owner.emit('connection', socket);
    if (head.length > 0) socket.emit('data', head);
    socket.resume();
  });
  await new Promise<void>((resolve) => relays.listen({ path: address }, resolve));
  const upstreams: Socket[] = [];
  const unreachable: Socket[] = [];
  const front: NetServer = createServer({ pauseOnConnect: true }, (socket) =>
    firstBytes(socket, (head) => relay(socket, head, target ?? address, KEY, { opened: (u) => upstreams.push(u), unreachable: () => unreachable.push(socket) }), { headTimeoutMs: 10_000, pending: new PendingConnections(1000) }),
  );
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const port = (front.address() as { port: number }).port;
  const close = async () => {
    owner.closeAllConnections();
    await Promise.all([new Promise((r) => relays.close(r)), new Promise((r) => front.close(r))]);
  };
  return { address, port, relays, front, intakes, upstreams, unreachable, close };
}

/** Writes `pieces` with `gapMs` between them and reads the whole answer (the server closes). */
async function exchange(port: number, pieces: string[], gapMs: (i: number) => number): Promise<{ text: string; localPort: number }> {
  const client = connect(port, '127.0.0.1');
  client.on('error', () => undefined);
  let text = '';
  client.setEncoding('latin1');
  client.on('data', (c: string) => (text += c));
  await once(client, 'connect');
  const localPort = client.localPort!;
  for (let i = 0; i < pieces.length; i++) {
    client.write(pieces[i]);
    const gap = gapMs(i);
    if (gap > 0) await sleep(gap);
  }
  await closed(client);
  return { text, localPort };
}

/** What a relaying worker writes: the preamble (with the client's address), then a request for `path`. */
const relayedRequest = (path: string, port: number, address: string, family = 'IPv4', connection = 'close') =>
  `PSRELAY1 ${KEY} ${family} ${port} ${address}\nGET ${path} HTTP/1.1\r\nHost: x\r\nConnection: ${connection}\r\n\r\n`;

/** A connection to a relay socket, its errors ignored (the server may close it at once). */
function relaySocket(address: string): Socket {
  const s = new Socket();
  s.on('error', () => undefined);
  return s.connect({ path: address });
}

/** Writes `pieces` (5 ms apart) on a new connection to the relay socket and reads all it is answered until it closes. */
async function relayed(address: string, ...pieces: string[]): Promise<string> {
  const s = relaySocket(address);
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString('latin1')));
  for (const [i, piece] of pieces.entries()) {
    if (i > 0) await sleep(5);
    s.write(piece);
  }
  await closed(s);
  return text;
}

const bodyOf = (text: string) => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;

describe('the relay between workers', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  beforeEach(async () => {
    p = await pair();
  });
  afterEach(() => p.close());

  it('loses no byte of a head and body that come in pieces, with delays, before and after the request line', async () => {
    // 20 connections at once, each cut at other places: the old handle passing lost bytes in 5 of 20 such.
    const runs = Array.from({ length: 20 }, async (_, i) => {
      const body = `payload-${i}-`.padEnd(40 + i, 'x');
      const request = `POST /socket.io/?EIO=4&transport=polling&sid=w9.s${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const cuts = [3 + i, 30 + i, 60 + i, request.length - 10, request.length];
      const pieces = cuts.map((end, k) => request.slice(k === 0 ? 0 : cuts[k - 1], end));
      const { text, localPort } = await exchange(p.port, pieces, (k) => (k * 3 + i) % 10);
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(bodyOf(text)).toEqual({ url: `/socket.io/?EIO=4&transport=polling&sid=w9.s${i}`, body, address: '127.0.0.1', port: localPort, family: 'IPv4' });
    });
    await Promise.all(runs);
    expect(p.unreachable).toHaveLength(0);
  });

  it('carries an upgraded connection both ways: the head in pieces, bytes right after it, then frames', async () => {
    const client = connect(p.port, '127.0.0.1');
    let text = '';
    client.setEncoding('latin1');
    client.on('data', (c: string) => (text += c));
    await once(client, 'connect');
    client.write('GET /socket.io/?EIO=4&transport=websocket&sid=w9.');
    await sleep(5);
    client.write('abc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nfirst;');
    for (let i = 0; i < 5; i++) {
      await sleep(i);
      client.write(`frame${i};`);
    }
    const want = 'first;frame0;frame1;frame2;frame3;frame4;';
    while (!text.endsWith(want)) await once(client, 'data');
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe(want);
    client.end();
    await closed(client);
  });

  it('survives a client that resets mid-relay: both sides are closed, nothing is left open', async () => {
    const client = connect(p.port, '127.0.0.1');
    client.on('error', () => undefined);
    await once(client, 'connect');
    client.write('GET /hold?sid=w9.x HTTP/1.1\r\nHost: x\r\n\r\n');
    while (p.intakes.length === 0) await sleep(5);
    const [upstream] = p.upstreams;
    const [ownerSide] = p.intakes;
    client.resetAndDestroy();
    // Either may see the reset as an error first ('close' follows it).
    await Promise.all([closed(upstream), closed(ownerSide)]);
    const open = (s: NetServer) => new Promise<number>((resolve, reject) => s.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    while ((await open(p.front)) > 0) await sleep(5);
    expect(await open(p.relays)).toBe(0);
  });

  it('leaves the client untouched when the owner cannot be reached: the caller serves it', async () => {
    const client = connect(p.port, '127.0.0.1');
    await once(client, 'connect');
    await new Promise<void>((resolve) => p.relays.close(() => resolve()));
    client.write('GET /?sid=w9.x HTTP/1.1\r\nHost: x\r\n\r\n');
    while (p.unreachable.length === 0) await sleep(5);
    const [socket] = p.unreachable;
    expect(socket.destroyed).toBe(false);
    expect(socket.bytesWritten).toBe(0);
    client.destroy();
  });

  it('closes a relay connection whose preamble has the wrong key or no line end within its bound', async () => {
    for (const preamble of [`PSRELAY1 ${'f'.repeat(32)} IPv4 1 127.0.0.1\nGET / HTTP/1.1\r\n\r\n`, 'x'.repeat(300), 'PSRELAY1 short IPv4 1 1.2.3.4\n']) {
      expect(await relayed(p.address, preamble)).toBe('');
    }
    expect(p.intakes).toHaveLength(0);
  });

  it('holds at most 256 relay connections that have not sent their preamble: the next is closed at once, and one that sends it is served', async () => {
    const silent: Socket[] = [];
    for (let i = 0; i < 256; i++) {
      const s = relaySocket(p.address);
      silent.push(s);
      await once(s, 'connect');
    }
    await sleep(50);
    // A 257th, even with a good preamble, is not served.
    expect(await relayed(p.address, relayedRequest('/over', 4241, '127.0.0.8'))).toBe('');
    for (const s of silent.slice(0, 10)) s.destroy();
    await sleep(50);
    const text = await relayed(p.address, relayedRequest('/late', 4242, '127.0.0.9'));
    expect(text).toContain('"url":"/late"');
    expect(text).toContain('"address":"127.0.0.9"');
    for (const s of silent) s.destroy();
  });

  it('serves a relay connection whose preamble drips in pieces, the head right after its line end', async () => {
    const request = relayedRequest('/drip', 4243, '::1', 'IPv6');
    const text = await relayed(p.address, request.slice(0, 5), request.slice(5, 40), request.slice(40, 60), request.slice(60));
    expect(bodyOf(text)).toEqual({ url: '/drip', body: '', address: '::1', port: 4243, family: 'IPv6' });
  });

  it('counts a relay connection as waiting only until its preamble is read: 260 held connections past it leave room for the next', async () => {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 260; i++) {
        const s = relaySocket(p.address);
        held.push(s);
        await once(s, 'connect');
        s.write(relayedRequest('/hold', 5000 + i, '127.0.0.7', 'IPv4', 'keep-alive'));
      }
      // Each is served, or closed if it were still counted as waiting past the bound.
      while (p.intakes.length < 260 && !held.some((s) => s.destroyed)) await sleep(5);
      expect(p.intakes).toHaveLength(260);
      expect(await relayed(p.address, relayedRequest('/late', 4244, '127.0.0.9'))).toContain('"url":"/late"');
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it('tries a busy owner again: a relay socket whose backlog is full refuses a connect at once (EAGAIN)', async () => {
    // The owner: another process listening with a backlog of 1 that holds its event loop for 300 ms.
    const busy = relayAddress(process.pid, `busy${Math.random()}`);
    const owner = `
      const net = require('node:net'), fs = require('node:fs');
      const server = net.createServer((s) => {
        let got = '';
        s.on('data', (c) => { got += c; if (got.includes('\\r\\n\\r\\n')) s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok'); });
      });
      server.listen({ path: ${JSON.stringify(busy)}, backlog: 1 }, () => {
        fs.writeSync(1, 'ready\\n');
        const until = Date.now() + 300;
        while (Date.now() < until);
      });
      process.on('disconnect', () => process.exit(0));`;
    const child = spawn(process.execPath, ['-e', owner], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const front = await pair(busy);
    try {
      await new Promise((resolve) => child.stdout!.once('data', resolve));
      const answers = await Promise.all(Array.from({ length: 8 }, () => exchange(front.port, ['GET /?sid=w9.x HTTP/1.1\r\nHost: x\r\n\r\n'], () => 0)));
      expect(answers.map((a) => a.text.slice(-2))).toEqual(Array(8).fill('ok'));
      expect(front.unreachable).toHaveLength(0);
    } finally {
      child.disconnect();
      await front.close();
    }
  });
});
