import { readdirSync } from 'node:fs';
import net from 'node:net';
import { io } from 'socket.io-client';
import { SOCKET_NAMESPACE, type Tick } from '../src/shared/wire';
import { startCluster, type Cluster } from './support/cluster';
import { openStream, type RawStream } from './support/sse';
import { sleep, waitFor } from './support/wait';

/**
 * WORKERS=2: a request of another worker's engine.io session is relayed to that worker over a
 * local socket, byte for byte, with the client's address (src/cluster/relay.ts).
 */
jest.setTimeout(90_000);

const RELAYING = "relaying a connection to its session's worker";
const PER_IP = 4;

type Answer = { status: number; headers: Record<string, string>; body: string };

/** One raw HTTP/1.1 exchange on `socket`: the request in `pieces` with small gaps, the answer read to its Content-Length. */
async function exchange(socket: net.Socket, pieces: string[], gapMs = (i: number) => i % 5): Promise<Answer> {
  let buf = '';
  const answer = new Promise<Answer>((resolve, reject) => {
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers['content-length'] ?? NaN);
      // A stream (no length): its head is the answer.
      if (!Number.isNaN(length) && buf.length < end + 4 + length) return;
      socket.off('data', onData);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: buf.slice(end + 4, Number.isNaN(length) ? undefined : end + 4 + length) });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before an answer: ${buf.slice(0, 200)}`)));
  });
  for (let i = 0; i < pieces.length; i++) {
    socket.write(pieces[i]);
    if (gapMs(i) > 0) await sleep(gapMs(i));
  }
  return answer;
}

async function open(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  return s;
}

/** A request cut into three pieces: inside the request line, inside the headers, and the body. */
function pieces(method: string, path: string, body = ''): string[] {
  const req = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`;
  const cut1 = req.indexOf('sid=') + 5;
  const cut2 = req.indexOf('Content-Type');
  return [req.slice(0, cut1), req.slice(cut1, cut2), req.slice(cut2, req.length - Math.min(body.length, 3)), req.slice(req.length - Math.min(body.length, 3))].filter((p) => p.length > 0);
}

/** The engine.io packets of a polling answer (EIO=4: separated by \x1e). */
const packets = (body: string) => body.split('\x1e').filter((p) => p.length > 0);

describe('WORKERS=2: the relay to a session\'s worker', () => {
  let c: Cluster;
  const relayed = () => c.lines().filter((l) => l.msg === RELAYING);
  const slotOf = (sid: string) => Number(/^w(\d+)\./.exec(sid)?.[1]);

  /** A raw engine.io polling session joined to /prices (BTC-USD), made on a connection of its own. */
  async function session(): Promise<{ sid: string; path: string }> {
    const s = await open(c.port);
    const hs = await exchange(s, ['GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
    s.destroy();
    const sid = (JSON.parse(hs.body.slice(1)) as { sid: string }).sid;
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const join = await open(c.port);
    const joined = await exchange(join, pieces('POST', path, `40${SOCKET_NAMESPACE},{"pairs":["BTC-USD"]}`));
    join.destroy();
    expect(joined.status).toBe(200);
    return { sid, path };
  }

  beforeAll(async () => {
    c = await startCluster({ POLL_INTERVAL_MS: '200', LOG_LEVEL: 'debug', MAX_STREAM_CONNECTIONS_PER_IP: String(PER_IP) });
  });
  afterAll(async () => {
    expect(await c.stop()).toBe(0);
  });

  it('relays every poll and post of a session that lands on the other worker, the head and body in pieces, with nothing lost', async () => {
    const { sid, path } = await session();
    const owner = slotOf(sid);
    const before = relayed().length;
    const ids: string[] = [];
    let rounds = 0;
    // Fresh connections until at least 3 were accepted by the other worker (the kernel's split is uneven).
    while (rounds < 10 || relayed().length - before < 3) {
      expect(rounds++).toBeLessThan(150);
      const get = await open(c.port);
      const polled = await exchange(get, pieces('GET', path));
      get.destroy();
      // On the wrong worker engine.io would answer 400 "Session ID unknown".
      expect(polled.status).toBe(200);
      for (const p of packets(polled.body)) {
        expect(p).not.toBe('1'); // no close packet
        if (p.startsWith(`42${SOCKET_NAMESPACE},["price"`)) ids.push((JSON.parse(p.slice(p.indexOf('['))) as [string, Tick])[1].id);
      }
      const post = await open(c.port);
      const posted = await exchange(post, pieces('POST', path, '6'));
      post.destroy();
      expect(posted).toMatchObject({ status: 200, body: 'ok' });
    }
    const mine = relayed().slice(before);
    expect(mine.every((l) => l.worker !== owner && l.to === owner)).toBe(true);
    expect(mine.some((l) => l.transport === 'polling')).toBe(true);
    // The ticks came in order, none twice, across polls served through either door.
    expect(ids.length).toBeGreaterThan(5);
    expect(new Set(ids).size).toBe(ids.length);
    const close = await open(c.port);
    await exchange(close, pieces('POST', path, '1'));
    close.destroy();
  });

  /** A Socket.IO client whose websocket upgrade was relayed (kept open for the shutdown test). */
  let relayedClient: { socket: ReturnType<typeof io>; notices: { code: string }[] } | undefined;

  it('relays the websocket upgrade of a polling session made on the other worker, and its ticks flow over it', async () => {
    for (let tries = 0; tries < 40; tries++) {
      const before = relayed().length;
      const socket = io(`${c.url}${SOCKET_NAMESPACE}`, { transports: ['polling', 'websocket'], auth: { pairs: ['BTC-USD'] }, reconnection: false, forceNew: true });
      const notices: { code: string }[] = [];
      socket.on('notice', (n: { code: string }) => notices.push(n));
      try {
        await new Promise<void>((resolve, reject) => {
          socket.io.engine.once('upgrade', () => resolve());
          socket.once('connect_error', reject);
        });
        const upgrade = relayed()
          .slice(before)
          .find((l) => l.transport === 'websocket');
        if (!upgrade) continue;
        expect(upgrade.to).toBe(slotOf(socket.io.engine.id));
        const got: Tick[] = [];
        socket.on('price', (t: Tick) => got.push(t));
        await waitFor(() => got.length >= 5, 10_000, () => `${got.length} ticks`);
        expect(socket.io.engine.transport.name).toBe('websocket');
        expect(socket.connected).toBe(true);
        relayedClient = { socket, notices };
        return;
      } finally {
        if (relayedClient?.socket !== socket) socket.close();
      }
    }
    throw new Error('no upgrade landed on the other worker in 40 tries');
  });

  it('counts a relayed connection against the client\'s own address (MAX_STREAM_CONNECTIONS_PER_IP)', async () => {
    // The client kept from the last test holds one slot of 127.0.0.1.
    const kept = relayedClient ? 1 : 0;
    await waitFor(async () => new RegExp(`price_stream_subscribers\\{transport="socketio"\\} ${kept}\\b`).test(await (await fetch(`${c.url}/metrics`)).text()), 10_000);
    const { path } = await session();
    const held: RawStream[] = [];
    try {
      for (let i = 1 + kept; i < PER_IP; i++) held.push(await openStream(`${c.url}/api/prices/stream?pairs=BTC-USD`));
      expect(held.map((s) => s.status)).toEqual(Array(PER_IP - 1 - kept).fill(200));
      // 127.0.0.1 holds PER_IP slots (the handshakes and the streams). A connection whose
      // first request is relayed then asks for one more stream: refused, as from that address.
      for (let tries = 0; tries < 60; tries++) {
        const before = relayed().length;
        const s = await open(c.port);
        try {
          expect((await exchange(s, pieces('GET', path))).status).toBe(200);
          if (relayed().length === before) continue;
          const stream = await exchange(s, ['GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
          expect(stream.status).toBe(429);
          expect(JSON.parse(stream.body)).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
          return;
        } finally {
          s.destroy();
        }
      }
      throw new Error('no connection landed on the other worker in 60 tries');
    } finally {
      for (const s of held) s.close();
      const close = await open(c.port);
      await exchange(close, pieces('POST', path, '1'));
      close.destroy();
    }
  });

  it('survives a client that resets a relayed connection: both workers keep serving, and no socket is left behind', async () => {
    const pids = c.workerPids();
    const fds = () => [...pids.values()].reduce((n, pid) => n + readdirSync(`/proc/${pid}/fd`).length, 0);
    const { path } = await session();
    const baseline = fds();
    let resets = 0;
    for (let tries = 0; tries < 60 && resets < 3; tries++) {
      const before = relayed().length;
      const s = await open(c.port);
      // A post whose body never comes: the relay holds it open until the reset.
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n6`);
      await waitFor(() => relayed().length > before || s.destroyed, 300).catch(() => undefined);
      if (relayed().length > before) resets++;
      s.resetAndDestroy();
    }
    expect(resets).toBeGreaterThan(0);
    await waitFor(() => fds() <= baseline, 10_000, () => `${fds()} fds, ${baseline} before`);
    expect(c.workerPids()).toEqual(pids);
    expect(c.lines().some((l) => l.msg === 'worker exited; restarting it')).toBe(false);
    // (A post cut short ends its engine.io session, as in one process.) New sessions are served.
    for (let i = 0; i < 4; i++) {
      const next = await session();
      const s = await open(c.port);
      expect((await exchange(s, pieces('POST', next.path, '1'))).status).toBe(200);
      s.destroy();
    }
  });

  it('SIGTERM: the shutdown notice of a relayed session passes through the relaying worker before it exits', async () => {
    const client = relayedClient;
    expect(client?.socket.connected).toBe(true);
    const disconnected = new Promise((r) => client!.socket.once('disconnect', r));
    expect(await c.stop()).toBe(0);
    await disconnected;
    expect(client!.notices.map((n) => n.code)).toContain('SHUTTING_DOWN');
  });
});
