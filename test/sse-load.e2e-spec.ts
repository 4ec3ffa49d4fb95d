import http from 'http';
import net from 'net';
import v8 from 'v8';
import vm from 'vm';
import { SseService } from '../src/sse/sse.service';
import { ConnectionRegistry } from '../src/stream/connection-registry';
import { startApp, type TestApp } from './support/app';
import { tapStreamOpens, waitFor } from './support/sse';

// Retained memory is what matters, not garbage not yet collected: let the test collect first.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const retainedBytes = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
};

/** A client that sends the request and never reads: the kernel buffers fill, then the server's. */
function stalledClient(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write('GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  socket.pause();
  return socket;
}

/** A client that reads everything and keeps only the ids, in order. */
function readingClient(url: string): Promise<{ ids: string[]; close(): void }> {
  return new Promise((resolve, reject) => {
    const ids: string[] = [];
    let buffer = '';
    const req = http.get(url, { agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const m = /^id: (.+)$/m.exec(buffer.slice(0, end));
          if (m) ids.push(m[1]);
          buffer = buffer.slice(end + 2);
        }
      });
      resolve({ ids, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

describe('SSE slow subscribers', () => {
  const STALLED = 50;
  const TICKS = 40_000;
  const BUFFER = 50;
  /** Ticks published in one event-loop turn (a poll has one per pair). */
  const PER_TURN = 100;
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ PAIRS: 'BTC-USD', CLIENT_BUFFER_SIZE: String(BUFFER), HISTORY_SIZE: '1000' });
  });
  afterAll(() => t.close());

  it('cuts off each subscriber that never reads at its backlog limit, with bounded memory, while a reader gets every tick promptly', async () => {
    const sse = t.app.get(SseService);
    const registry = t.app.get(ConnectionRegistry);
    const opened = tapStreamOpens(t.app);
    const releases = t.recordDisconnects();
    const reader = await readingClient(`${t.url}/api/prices/stream?pairs=BTC-USD`);
    const stalled = Array.from({ length: STALLED }, () => stalledClient(t.port));
    await waitFor(() => registry.counts().sse === STALLED + 1);

    const baseline = retainedBytes();
    let peakGrowth = 0;
    let maxBuffered = 0;
    let maxFrame = 0;
    let highWaterMark = 0;
    const published: string[] = [];
    for (let i = 0; i < TICKS; i++) {
      const tick = (await t.publish('BTC-USD', 50_000 + i))!;
      published.push(tick.id);
      maxFrame = Math.max(maxFrame, Buffer.byteLength(`event: price\nid: ${tick.id}\ndata: ${JSON.stringify(tick)}\n\n`) + 16);
      for (const { req, res } of opened) {
        if (res.destroyed) continue;
        maxBuffered = Math.max(maxBuffered, res.writableLength);
        highWaterMark = Math.max(highWaterMark, req.socket.writableHighWaterMark);
      }
      if (i % PER_TURN === PER_TURN - 1) await new Promise((r) => setImmediate(r)); // let sockets flush and 'drain'
      if (i % 5000 === 4999) peakGrowth = Math.max(peakGrowth, retainedBytes() - baseline);
    }
    const lastPublishedAt = Date.now();
    peakGrowth = Math.max(peakGrowth, retainedBytes() - baseline);

    // The reader keeps up: every tick, in order, within a second of the last publish.
    await waitFor(() => reader.ids.length === TICKS, 2000, () => `reader has ${reader.ids.length} of ${TICKS}`);
    const lag = Date.now() - lastPublishedAt;
    expect(reader.ids).toEqual(published);
    expect(lag).toBeLessThan(1000);

    // Every stalled subscriber was cut off; only the reader is left.
    expect(releases.filter(([, reason]) => reason === 'slow')).toHaveLength(STALLED);
    expect(registry.counts()).toMatchObject({ total: 1, sse: 1 });
    // The reader is the only member of BTC-USD's set in the hub.
    expect(sse.openCount).toBe(1);
    expect(t.hub.memberships()).toBe(1);
    // What the server held for one subscriber never passed its bound: the socket's high-water
    // mark (Node's default: 16 KiB up to Node 20, 64 KiB from Node 22), the frames of one
    // event-loop turn (written together) and CLIENT_BUFFER_SIZE.
    expect(highWaterMark).toBeGreaterThanOrEqual(16 * 1024);
    expect(highWaterMark).toBeLessThanOrEqual(64 * 1024);
    expect(maxBuffered).toBeLessThanOrEqual(highWaterMark + (PER_TURN + BUFFER) * maxFrame);
    // Without the cut-off the same run retains ~200 MB (measured); with it, well under 48 MB.
    expect(peakGrowth).toBeLessThan(48 * 1024 * 1024);

    reader.close();
    for (const s of stalled) s.destroy();
  }, 60_000);
});

describe('SSE connect/disconnect churn', () => {
  it('leaves no subscription, listener, lease or timer behind after 1,000 connect/disconnect cycles', async () => {
    const t = await startApp({ PAIRS: 'BTC-USD,ETH-USD', HEARTBEAT_INTERVAL_MS: '100', MAX_STREAM_CONNECTIONS_PER_IP: '1000' });
    try {
      const sse = t.app.get(SseService);
      const registry = t.app.get(ConnectionRegistry);
      await t.publish('BTC-USD', 1);
      const resources = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap').length;
      const before = { resources: resources(), members: t.hub.memberships() };
      const releases = t.recordDisconnects();
      const server = t.app.getHttpServer();
      const serverListeners = () => server.listenerCount('request') + server.listenerCount('connection');
      const listenersBefore = serverListeners();

      let price = 2;
      const cycle = (i: number) =>
        new Promise<void>((resolve, reject) => {
          const path = i % 3 === 0 ? '/stream' : i % 3 === 1 ? '/api/price/stream' : '/api/prices/stream?pairs=BTC-USD,ETH-USD';
          const req = http.get(`${t.url}${path}`, { agent: false }, (res) => {
            expect(res.statusCode).toBe(200);
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          });
          req.on('error', reject);
        });
      const CONCURRENCY = 25;
      for (let i = 0; i < 1000; i += CONCURRENCY) {
        await Promise.all(Array.from({ length: CONCURRENCY }, (_, k) => cycle(i + k)));
        if (i % 100 === 0) await t.publish('BTC-USD', price++); // ticks flow during the churn
      }

      await waitFor(() => registry.counts().total === 0 && sse.openCount === 0, 5000, () => JSON.stringify(registry.counts()));
      expect(registry.counts()).toEqual({ total: 0, ips: 0, sse: 0, socketio: 0, websocket: 0 });
      expect(t.hub.memberships()).toBe(before.members);
      expect(sse.heartbeatActive).toBe(false);
      expect(sse.openCount).toBe(0);
      expect(releases).toHaveLength(1000);
      expect(serverListeners()).toBe(listenersBefore);
      await waitFor(() => resources() <= before.resources, 5000, () => `resources ${resources()} > ${before.resources}`);
    } finally {
      await t.close();
    }
  }, 60_000);
});
