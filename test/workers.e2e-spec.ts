import http from 'node:http';
import net from 'node:net';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { SOCKET_NAMESPACE, WS_CLOSE_SERVICE_RESTART, WS_PATH, type Tick } from '../src/shared/wire';
import { startCluster, type Cluster } from './support/cluster';
import { deletePrefix, freePort, randomPrefix, REDIS_URL } from './support/redis';
import { pollingHandshake, websocketHandshake } from './support/sockets';
import { getJson, type RawStream } from './support/sse';
import { waitFor } from './support/wait';

/**
 * WORKERS=2 as an operator runs it (node dist/main.js): one port, two worker processes, the
 * primary polling the simulated source every 100 ms and forwarding every tick with its id.
 */
jest.setTimeout(60_000);

const PAIRS = 'pairs=BTC-USD,ETH-USD';
const ADMIN_TOKEN = 'a-token-for-the-workers-spec';
const idsOf = (s: RawStream) => s.ticks().map((t) => t.id);
const metricsText = async (c: Cluster) => (await fetch(`${c.url}/metrics`)).text();
const firstTicks = async (s: RawStream) => {
  await s.until((x) => x.ticks().length >= 1);
  return s;
};

/** The reference's ids from `first` to `last` inclusive. */
function slice(reference: string[], first: string, last: string): string[] {
  const a = reference.indexOf(first);
  const b = reference.indexOf(last);
  expect(a).toBeGreaterThanOrEqual(0);
  expect(b).toBeGreaterThanOrEqual(a);
  return reference.slice(a, b + 1);
}

/**
 * Opens streams resuming from `lastId` until one is served by another worker than `not` (the
 * ones that landed on `not` stay open, so that the balancing sends the next elsewhere).
 */
async function resumeElsewhere(c: Cluster, not: number, lastId: string): Promise<{ stream: RawStream; worker: number; tries: number }> {
  const held: RawStream[] = [];
  try {
    for (let tries = 1; tries <= 20; tries++) {
      const s = await c.stream(PAIRS, { 'Last-Event-ID': lastId });
      expect(s.stream.status).toBe(200);
      if (s.worker !== not) return { ...s, tries };
      held.push(s.stream);
    }
    throw new Error('every reconnect landed on the same worker');
  } finally {
    for (const s of held) s.close();
  }
}

/**
 * A subscriber reads, leaves, and reconnects from its last id until it lands on the other
 * worker; what it got before and after must be exactly what a subscriber that never left got.
 */
async function resumesOnAnotherWorker(c: Cluster): Promise<void> {
  const reference = await c.stream(PAIRS);
  const first = await c.stream(PAIRS);
  expect([1, 2]).toContain(first.worker);
  await first.stream.until((s) => s.ticks().length >= 10);
  first.stream.close();
  const before = idsOf(first.stream);
  const lastId = before[before.length - 1];
  // Ticks pass meanwhile: the resume has a gap to fill from the other worker's window.
  await new Promise((r) => setTimeout(r, 500));
  const second = await resumeElsewhere(c, first.worker, lastId);
  await second.stream.until((s) => s.ticks().length >= 15);
  const after = idsOf(second.stream);
  const last = after[after.length - 1];
  await reference.stream.until((s) => idsOf(s).includes(last));
  second.stream.close();
  reference.stream.close();
  expect(second.worker).not.toBe(first.worker);
  // Nothing lost, nothing twice, in order: exactly what the reference saw over the same span.
  expect([...before, ...after]).toEqual(slice(idsOf(reference.stream), before[0], last));
}

describe('WORKERS=2', () => {
  describe('one stream across the workers', () => {
    let c: Cluster;
    beforeAll(async () => {
      c = await startCluster({ POLL_INTERVAL_MS: '100', LOG_LEVEL: 'info', ADMIN_TOKEN });
    });
    afterAll(async () => {
      expect(await c.stop()).toBe(0);
    });

    it('resumes exactly on another worker: the same ids as a subscriber that never left', () => resumesOnAnotherWorker(c));

    it('keeps a Socket.IO polling session on the worker that made it', async () => {
      const socket = io(`${c.url}${SOCKET_NAMESPACE}`, { transports: ['polling'], auth: { pairs: ['BTC-USD'] }, reconnection: false, forceNew: true });
      const got: Tick[] = [];
      socket.on('price', (t: Tick) => got.push(t));
      try {
        // Every poll is a new HTTP request, often on a new connection; a request routed to the
        // other worker would be refused (unknown session) and the socket would disconnect.
        await waitFor(() => got.length >= 20, 15_000, () => `${got.length} ticks`);
        expect(socket.connected).toBe(true);
        expect(socket.io.engine.transport.name).toBe('polling');
        expect(socket.io.engine.id).toMatch(/^w\d+\./);
      } finally {
        socket.close();
      }
    });

    it('reports the whole service on /metrics, with each worker\'s connections', async () => {
      const a = await c.stream(PAIRS);
      const other = await resumeElsewhere(c, a.worker, idsOf(await firstTicks(a.stream))[0]);
      try {
        await waitFor(async () => {
          const text = await metricsText(c);
          return /price_stream_worker_subscribers\{worker="1"\} [1-9]/.test(text) && /price_stream_worker_subscribers\{worker="2"\} [1-9]/.test(text) && /price_stream_subscribers\{transport="sse"\} 2\b/.test(text);
        }, 10_000);
        const text = await metricsText(c);
        // A gauge every process holds the same value of is not summed: the window holds no more
        // ticks than were published (three processes summed would hold three times as many).
        const history = Number(/^price_stream_history_size (\d+)/m.exec(text)?.[1]);
        const published = [...text.matchAll(/^price_stream_ticks_published_total\{pair="[^"]+"\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
        expect(history).toBeLessThanOrEqual(published);
        const ready = (await getJson(`${c.url}/health/ready`)).body as { details: { prices: { pairs: Record<string, { latestId: string }> } } };
        expect(history).toBeGreaterThan(0);
        expect(history).toBeLessThan(10_000);
        expect(ready.details.prices.pairs['BTC-USD'].latestId).toMatch(/^\d+-\d+$/);
      } finally {
        a.stream.close();
        other.stream.close();
      }
    });

    it("answers readiness and a refresh with the primary's poller, which polls for every worker", async () => {
      const ready = (await getJson(`${c.url}/health/ready`)).body as { details: { sources: { polling: boolean; circuits: { source: string }[] } } };
      expect(ready.details.sources).toMatchObject({ polling: true, circuits: [{ source: 'simulated' }] });
      const res = await fetch(`${c.url}/api/v1/ltp/refresh?pairs=BTC/USD`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ message: 'refreshed', priced: ['BTC/USD'] });
    });

    it('serves several requests on one kept-alive connection, a body sent after the head included', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const get = (path: string, method = 'GET', body?: string) =>
        new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
          const req = http.request(`${c.url}${path}`, { agent, method, headers: body ? { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` } : {} }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
          });
          req.on('error', reject);
          if (body) {
            // The head first, the body in a later packet.
            req.flushHeaders();
            setTimeout(() => req.end(body), 50);
          } else req.end();
        });
      try {
        const answers = [];
        for (let i = 0; i < 5; i++) answers.push(await get('/api/prices/BTC-USD'));
        answers.push(await get('/api/admin/refresh?pairs=BTC-USD', 'POST', '{}'));
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
        expect(new Set(answers.map((a) => a.socket)).size).toBe(1);
      } finally {
        agent.destroy();
      }
    });

    it('names the process on every log line (worker 1..n, 0 the primary)', () => {
      const workers = new Set(c.lines().map((l) => l.worker));
      expect([...workers].sort()).toEqual([0, 1, 2]);
    });
  });

  it('restarts a worker killed under load; its subscribers resume on the others with no lost tick', async () => {
    const c = await startCluster({ POLL_INTERVAL_MS: '100', LOG_LEVEL: 'info' });
    try {
      const reference = await c.stream(PAIRS);
      const victim = reference.worker === 1 ? 2 : 1;
      // Subscribers on the victim (the balancing puts every other one there).
      const subs: { stream: RawStream; worker: number }[] = [];
      while (subs.filter((s) => s.worker === victim).length < 3) subs.push(await c.stream(PAIRS));
      const onVictim = subs.filter((s) => s.worker === victim);
      for (const s of subs.filter((x) => x.worker !== victim)) s.stream.close();
      await Promise.all(onVictim.map((s) => s.stream.until((x) => x.ticks().length >= 5)));
      const oldPid = c.workerPids().get(victim)!;
      process.kill(oldPid, 'SIGKILL');
      await Promise.all(onVictim.map((s) => s.stream.ended));
      // Each reconnects as EventSource would, from its last id, wherever the primary sends it.
      const resumed = await Promise.all(
        onVictim.map(async (s) => {
          const seen = idsOf(s.stream);
          await new Promise((r) => setTimeout(r, 300));
          const next = await c.stream(PAIRS, { 'Last-Event-ID': seen[seen.length - 1] });
          expect(next.stream.status).toBe(200);
          return { seen, next };
        }),
      );
      await waitFor(() => c.workerPids().get(victim) !== oldPid, 15_000, () => 'the victim to be restarted');
      await Promise.all(resumed.map((r) => r.next.stream.until((x) => x.ticks().length >= 5)));
      for (const r of resumed) {
        const after = idsOf(r.next.stream);
        const last = after[after.length - 1];
        await reference.stream.until((x) => idsOf(x).includes(last));
        expect([...r.seen, ...after]).toEqual(slice(idsOf(reference.stream), r.seen[0], last));
        r.next.stream.close();
      }
      reference.stream.close();
      expect(c.lines().some((l) => l.msg === 'worker exited; restarting it' && l.slot === victim && l.signal === 'SIGKILL')).toBe(true);
      expect(await metricsText(c)).toMatch(new RegExp(`^price_stream_worker_restarts_total\\{worker="${victim}"\\} 1$`, 'm'));
      // The restarted worker serves again, from a window with the same ids as the reference's.
      const refIds = idsOf(reference.stream);
      const later = await resumeElsewhere(c, victim === 1 ? 2 : 1, refIds[0]);
      await later.stream.until((x) => idsOf(x).includes(refIds[refIds.length - 1]));
      later.stream.close();
      expect(later.worker).toBe(victim);
      expect(idsOf(later.stream).slice(0, refIds.length - 1)).toEqual(refIds.slice(1));
    } finally {
      expect(await c.stop()).toBe(0);
    }
  });

  it('SIGTERM of the primary ends the streams on every worker with a reconnect hint, then exits 0', async () => {
    const c = await startCluster({ POLL_INTERVAL_MS: '100', SHUTDOWN_TIMEOUT_MS: '5000' });
    const streams: { stream: RawStream; worker: number }[] = [];
    while (new Set(streams.map((s) => s.worker)).size < 2 || streams.length < 4) streams.push(await c.stream(PAIRS));
    const ws = new WebSocket(`ws://127.0.0.1:${c.port}${WS_PATH}?${PAIRS}`);
    const wsClosed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((r) => ws.once('message', r));
    await Promise.all(streams.map((s) => s.stream.until((x) => x.ticks().length >= 1)));
    const started = Date.now();
    c.proc.kill('SIGTERM');
    await Promise.all(streams.map((s) => s.stream.ended));
    expect(await c.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    for (const s of streams) expect(s.stream.text()).toMatch(/: server shutting down, reconnect\nretry: \d+\n\n$/);
    expect(await wsClosed).toBe(WS_CLOSE_SERVICE_RESTART);
    expect(new Set(streams.map((s) => s.worker))).toEqual(new Set([1, 2]));
  });

  it('with REDIS_URL each worker is an instance: one leader polls, and a resume on another worker is exact', async () => {
    const prefix = randomPrefix();
    const c = await startCluster({ POLL_INTERVAL_MS: '100', LOG_LEVEL: 'info', REDIS_URL, REDIS_PREFIX: prefix, LEADER_TTL_MS: '1000' });
    try {
      await resumesOnAnotherWorker(c);
      const leaders = c.lines().filter((l) => l.msg === 'leader: polling the upstreams');
      expect(leaders.map((l) => l.worker)).toHaveLength(1);
      expect([1, 2]).toContain(leaders[0].worker);
      expect(c.lines().find((l) => l.msg === 'listening')).toMatchObject({ worker: 0, workers: 2, polling: 'leader (Redis)' });
    } finally {
      expect(await c.stop()).toBe(0);
      await deletePrefix(prefix);
    }
  });

  it('stops with an error, not a restart loop, when no worker can start (the port is taken)', async () => {
    const taken = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      await expect(startCluster({ PORT: String(port) })).rejects.toThrow(/a worker failed to start; stopping/);
    } finally {
      taken.close();
    }
  });

  describe('caps for the whole service', () => {
    let c: Cluster;
    beforeAll(async () => {
      c = await startCluster({ MAX_STREAM_CONNECTIONS: '4', MAX_STREAM_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '1', POLL_INTERVAL_MS: '200' });
    });
    afterAll(async () => {
      expect(await c.stop()).toBe(0);
    });
    const from = (ip: string) => ({ 'X-Forwarded-For': ip });

    /** Opens `n` refused attempts' worth of streams; each refusal names the worker that refused. */
    const refusals = async (n: number, ip: string) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = await c.stream(PAIRS, from(ip));
        expect(s.stream.status).toBe(429);
        expect(JSON.parse(await s.stream.ended.then(() => s.stream.text()))).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
        out.push(s.worker);
      }
      return out;
    };

    it('MAX_STREAM_CONNECTIONS_PER_IP counts an address on every worker', async () => {
      const a = [await c.stream(PAIRS, from('203.0.113.1')), await c.stream(PAIRS, from('203.0.113.1'))];
      try {
        expect(a.map((s) => s.stream.status)).toEqual([200, 200]);
        // Refused wherever they land, also by a worker that holds fewer than 2 of the address' streams itself.
        const by = await refusals(12, '203.0.113.1');
        const held = (w: number) => a.filter((s) => s.worker === w).length;
        expect(by.some((w) => held(w) < 2)).toBe(true);
        const other = await c.stream(PAIRS, from('203.0.113.2'));
        expect(other.stream.status).toBe(200);
        other.stream.close();
      } finally {
        for (const s of a) s.stream.close();
      }
    });

    it('MAX_STREAM_CONNECTIONS_PER_IP counts bare engine.io handshakes on every worker and refuses the rest at the handshake', async () => {
      await waitFor(async () => /price_stream_subscribers\{transport="sse"\} 0\b/.test(await metricsText(c)), 5000); // the last test's streams gone
      const held = [await pollingHandshake(c.url, from('192.0.2.1')), await websocketHandshake(c.port, from('192.0.2.1'))];
      try {
        expect(held.map((h) => h.status)).toEqual([200, 101]);
        for (let i = 0; i < 4; i++) {
          for (const r of [await pollingHandshake(c.url, from('192.0.2.1')), await websocketHandshake(c.port, from('192.0.2.1'))]) {
            expect(r.status).toBe(429);
            expect(JSON.parse(r.body)).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
          }
        }
        const other = await c.stream(PAIRS, from('192.0.2.2'));
        expect(other.stream.status).toBe(200);
        other.stream.close();
      } finally {
        await Promise.all(held.map((h) => h.close()));
      }
      await waitFor(async () => /price_stream_subscribers\{transport="socketio"\} 0\b/.test(await metricsText(c)), 5000);
      const again = await websocketHandshake(c.port, from('192.0.2.1'));
      expect(again.status).toBe(101);
      await again.close();
    });

    it('MAX_STREAM_CONNECTIONS counts every worker, and a closed stream frees its slot', async () => {
      const open: Awaited<ReturnType<Cluster['stream']>>[] = [];
      for (let i = 1; i <= 4; i++) open.push(await c.stream(PAIRS, from(`198.51.100.${i}`)));
      expect(open.map((s) => s.stream.status)).toEqual([200, 200, 200, 200]);
      const by = await refusals(12, '198.51.100.9');
      expect(by.some((w) => open.filter((s) => s.worker === w).length < 4)).toBe(true);
      open.pop()!.stream.close();
      await waitFor(async () => /price_stream_subscribers\{transport="sse"\} 3\b/.test(await metricsText(c)), 5000);
      const admitted = await c.stream(PAIRS, from('198.51.100.9'));
      expect(admitted.stream.status).toBe(200);
      admitted.stream.close();
      for (const s of open) s.stream.close();
    });
  });
});
