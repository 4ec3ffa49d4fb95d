import { idAfter } from '../src/domain/tick-id';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { MetricsService } from '../src/metrics/metrics.service';
import { ConnectionRegistry } from '../src/stream/connection-registry';
import { Subscriber } from '../src/stream/stream-hub';
import { TRANSPORTS, type Tick, type Transport, type WsMessage } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { openProbe, probeHas, type Probe } from './support/probes';
import { connected, ioClient, publishUntil, until } from './support/sockets';
import { sleep } from './support/wait';

/**
 * The promises of the one subscription core, checked the same way on every transport: resume
 * after long gaps, the slow-subscriber policy, conflation, and what each transport lets in.
 */
describe('one subscription core, every transport', () => {
  const BUFFER = 20;
  const WINDOW = 200;
  let t: TestApp;
  let price = 10_000;
  const probes: Probe[] = [];
  const open = async (transport: Transport, req: Parameters<typeof openProbe>[2]) => {
    const p = await openProbe(transport, t.port, req);
    probes.push(p);
    return p;
  };
  const publishN = async (pair: string, n: number): Promise<Tick[]> => {
    const out: Tick[] = [];
    for (let i = 0; i < n; i++) out.push((await t.publish(pair, ++price))!);
    return out;
  };

  afterEach(async () => {
    for (const p of probes.splice(0)) p.close();
    await t?.close();
  });

  it('resumes after a gap of 3× CLIENT_BUFFER_SIZE ticks, and after one of the whole window, with exactly the missed ids, and never cuts the subscriber', async () => {
    t = await startApp({ PAIRS: 'BTC-USD', CLIENT_BUFFER_SIZE: String(BUFFER), HISTORY_SIZE: String(WINDOW) });
    const releases = t.recordDisconnects();
    await publishN('BTC-USD', 1);
    const reference = await open('sse', { pairs: ['BTC-USD'] });
    for (const gap of [3 * BUFFER + 5, WINDOW]) {
      const firsts = await Promise.all(TRANSPORTS.map((tr) => open(tr, { pairs: ['BTC-USD'] })));
      const [seen] = await publishN('BTC-USD', 1);
      await Promise.all(firsts.map((p) => probeHas(p, seen.id)));
      for (const p of firsts) p.close();
      const missed = await publishN('BTC-USD', gap);
      const resumed = await Promise.all(TRANSPORTS.map((tr) => open(tr, { pairs: ['BTC-USD'], lastEventId: seen.id })));
      const [live] = await publishN('BTC-USD', 1);
      await Promise.all([...resumed, reference].map((p) => probeHas(p, live.id)));
      const expected = reference.ids().slice(reference.ids().indexOf(seen.id) + 1);
      expect(expected).toEqual([...missed, live].map((x) => x.id));
      for (const p of resumed) {
        expect({ transport: p.transport, resets: p.resets, ids: p.ids() }).toEqual({ transport: p.transport, resets: 0, ids: expected });
        expect(p.closed).toBe(false);
      }
    }
    expect(releases.filter(([, reason]) => reason === 'slow')).toEqual([]);
  }, 60_000);

  it('cuts a subscriber that stops reading at the same backlog on every transport, while the others keep up', async () => {
    t = await startApp({ PAIRS: 'BTC-USD', CLIENT_BUFFER_SIZE: String(BUFFER), HISTORY_SIZE: '100', SOCKET_EVENTS_PER_SECOND: '1000' });
    const cuts: [Transport, number][] = [];
    const slow = Subscriber.prototype.slow;
    const policy = jest.spyOn(Subscriber.prototype, 'slow').mockImplementation(function (this: Subscriber, stalled?: boolean) {
      cuts.push([this.transport, this.backlog]);
      slow.call(this, stalled);
    });
    const releases = t.recordDisconnects();
    const reader = await open('sse', { pairs: ['BTC-USD'] });
    const stalled = await Promise.all(TRANSPORTS.map((tr) => open(tr, { pairs: ['BTC-USD'] })));
    for (const p of stalled) p.pause();
    const { last } = await publishUntil(t.publish, 'BTC-USD', () => releases.filter(([, r]) => r === 'slow').length === TRANSPORTS.length);
    expect(cuts.map(([tr]) => tr).sort()).toEqual([...TRANSPORTS].sort());
    // Each was cut when the hub held one message more than CLIENT_BUFFER_SIZE for it.
    expect(cuts.map(([, backlog]) => backlog)).toEqual(TRANSPORTS.map(() => BUFFER + 1));
    await probeHas(reader, last!.id, 20_000);
    expect(reader.closed).toBe(false);
    policy.mockRestore();
  }, 60_000);

  it('conflates at conflate=1000 on a stream of 10 ticks/s per pair: about one tick per second per pair, always the latest', async () => {
    t = await startApp({ PAIRS: 'BTC-USD,ETH-USD' });
    await publishN('BTC-USD', 1);
    await publishN('ETH-USD', 1);
    const conflating = await Promise.all(TRANSPORTS.map((tr) => open(tr, { pairs: ['BTC-USD', 'ETH-USD'], conflate: 1000 })));
    await sleep(50);
    const startCounts = conflating.map((p) => p.ticks.length); // the snapshot: one per pair
    expect(startCounts).toEqual(TRANSPORTS.map(() => 2));
    const published: Tick[] = [];
    const publishedAt = new Map<string, number>();
    const started = Date.now();
    while (Date.now() - started < 3000) {
      for (const tick of await Promise.all([t.publish('BTC-USD', ++price), t.publish('ETH-USD', ++price)])) {
        published.push(tick!);
        publishedAt.set(tick!.id, Date.now());
      }
      await sleep(100);
    }
    await sleep(1200); // the last slot
    for (const p of conflating) {
      for (const pair of ['BTC-USD', 'ETH-USD']) {
        const live = p.ticks.slice(2).filter((x) => x.pair === pair);
        const ofPair = published.filter((x) => x.pair === pair);
        // ~3 s of ticks: one at most per second (the first may go at once).
        expect({ transport: p.transport, n: live.length >= 2 && live.length <= 4 }).toEqual({ transport: p.transport, n: true });
        // The last one is the latest price, and together they account for every tick.
        expect(live[live.length - 1].id).toBe(ofPair[ofPair.length - 1].id);
        expect(live.reduce((n, x) => n + 1 + (x.skipped ?? 0), 0)).toBe(ofPair.length);
        const arrived = p.ticks.map((x, i) => [x, p.arrivals[i]] as const).filter(([x]) => x.pair === pair).slice(1);
        for (let i = 1; i < arrived.length; i++) expect(arrived[i][1] - arrived[i - 1][1]).toBeGreaterThanOrEqual(900);
        // Each is the latest price of its pair when it left: nothing newer had been published 50 ms before it arrived.
        for (const [x, at] of arrived) {
          const newer = ofPair.filter((y) => idAfter(y.id, x.id) && publishedAt.get(y.id)! < at - 50);
          expect({ transport: p.transport, id: x.id, newer: newer.length }).toEqual({ transport: p.transport, id: x.id, newer: 0 });
        }
      }
    }
  }, 30_000);

  it('under CONFLATE_SLOW_MS gives a subscriber that stopped reading conflated ticks once it reads again, instead of cutting it', async () => {
    t = await startApp({ PAIRS: 'BTC-USD', CLIENT_BUFFER_SIZE: String(BUFFER), CONFLATE_SLOW_MS: '200', HISTORY_SIZE: '100', SOCKET_EVENTS_PER_SECOND: '1000' });
    const metrics = t.app.get(MetricsService);
    const switched: Transport[] = [];
    const slow = metrics.slow.bind(metrics);
    jest.spyOn(metrics, 'slow').mockImplementation((transport, action) => {
      if (action === 'conflated') switched.push(transport);
      slow(transport, action);
    });
    const releases = t.recordDisconnects();
    const stalled = await Promise.all(TRANSPORTS.map((tr) => open(tr, { pairs: ['BTC-USD'] })));
    for (const p of stalled) p.pause();
    await publishUntil(t.publish, 'BTC-USD', () => TRANSPORTS.every((tr) => switched.includes(tr)));
    const [latest] = await publishN('BTC-USD', 1);
    for (const p of stalled) p.resume();
    await Promise.all(stalled.map((p) => probeHas(p, latest.id, 20_000)));
    for (const p of stalled) {
      expect(p.closed).toBe(false);
      expect({ transport: p.transport, conflated: p.ticks.some((x) => (x.skipped ?? 0) > 0) }).toEqual({ transport: p.transport, conflated: true });
    }
    expect(releases).toEqual([]);
  }, 60_000);
});

describe('what each transport lets in', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('refuses the Socket.IO root namespace, counts its connections under the caps and closes them', async () => {
    t = await startApp({ MAX_STREAM_CONNECTIONS_PER_IP: '5' });
    const registry = t.app.get(ConnectionRegistry);
    let peak = 0;
    const sample = setInterval(() => (peak = Math.max(peak, registry.counts().socketio)), 2);
    const roots = Array.from({ length: 40 }, () => io(t!.url, { transports: ['websocket'], forceNew: true, reconnection: false }));
    try {
      const errors = await Promise.all(roots.map((s) => new Promise<{ data?: { code: string } }>((resolve) => s.once('connect_error', resolve))));
      const codes = new Set(errors.map((e) => e.data?.code));
      // Past the cap the handshake itself is refused (429): a transport error, with no data.
      expect([...codes].every((c) => c === 'INVALID_NAMESPACE' || c === undefined)).toBe(true);
      expect(codes.has('INVALID_NAMESPACE')).toBe(true);
      await until(() => registry.counts().socketio === 0, 'the root connections to be closed');
      expect(peak).toBeLessThanOrEqual(5);
      // The namespace itself still serves, under the same cap.
      const ok = ioClient(t.url);
      await connected(ok.socket);
      ok.close();
    } finally {
      clearInterval(sample);
      for (const s of roots) s.disconnect();
    }
  });

  it('subscribes and unsubscribes on Socket.IO without an acknowledgement callback; errors then arrive as a notice', async () => {
    t = await startApp();
    const c = ioClient(t.url);
    try {
      await connected(c.socket);
      c.socket.emit('subscribe', { pairs: ['BTC-USD'] });
      await sleep(50);
      const tick = await t.publish('BTC-USD', 123);
      await until(() => c.got.ticks.some((x) => x.id === tick!.id), 'a tick after a subscribe without ack');
      c.socket.emit('subscribe', { pairs: ['DOGE-USD'] });
      await until(() => c.got.notices.length > 0, 'a notice for the refused subscribe');
      expect(c.got.notices[0]).toMatchObject({ code: 'UNSUPPORTED_PAIR', event: 'subscribe' });
      c.socket.emit('unsubscribe', { pairs: ['BTC-USD'] });
      await sleep(50);
      const after = await t.publish('BTC-USD', 124);
      await sleep(100);
      expect(c.got.ticks.some((x) => x.id === after!.id)).toBe(false);
      expect(c.socket.connected).toBe(true);
    } finally {
      c.close();
    }
  });

  it('takes subscribe and unsubscribe messages on an open WebSocket, each answered with a result', async () => {
    t = await startApp();
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/api/ws?pairs=BTC-USD`);
    const got: WsMessage[] = [];
    ws.on('message', (d) => got.push(JSON.parse(String(d)) as WsMessage));
    try {
      await new Promise((r) => ws.once('open', r));
      const seen = await t.publish('ETH-USD', 1);
      const missed = await t.publish('ETH-USD', 2);
      ws.send(JSON.stringify({ type: 'subscribe', pairs: ['ETH-USD'], lastEventId: seen!.id }));
      await until(() => got.some((m) => m.type === 'subscribed'), 'the subscribe result');
      expect(got.find((m) => m.type === 'subscribed')).toEqual({ type: 'subscribed', pairs: ['BTC-USD', 'ETH-USD'], recovered: true });
      await until(() => got.some((m) => m.type === 'price' && m.id === missed!.id), 'the replayed tick');
      ws.send(JSON.stringify({ type: 'unsubscribe', pairs: ['BTC-USD'] }));
      await until(() => got.some((m) => m.type === 'unsubscribed'), 'the unsubscribe result');
      expect(got.find((m) => m.type === 'unsubscribed')).toEqual({ type: 'unsubscribed', pairs: ['ETH-USD'] });
      ws.send(JSON.stringify({ type: 'subscribe', pairs: ['DOGE-USD'] }));
      ws.send('not json');
      ws.send(JSON.stringify({ type: 'subscribe', pairs: ['BTC-USD'], conflate: 5 }));
      await until(() => got.filter((m) => m.type === 'error').length === 3, 'three errors');
      expect(got.filter((m) => m.type === 'error').map((m) => (m as { code: string }).code)).toEqual(['UNSUPPORTED_PAIR', 'INVALID_PAYLOAD', 'INVALID_CONFLATE']);
      expect(ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      ws.terminate();
    }
  });

  it('lets the service’s own origin (the bundled web client) open WebSocket and Socket.IO streams when CORS_ORIGINS lists others', async () => {
    t = await startApp({ CORS_ORIGINS: 'https://dashboard.example' });
    const own = `http://127.0.0.1:${t.port}`;
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/api/ws?pairs=BTC-USD`, { headers: { Origin: own } });
    const foreign = new WebSocket(`ws://127.0.0.1:${t.port}/api/ws?pairs=BTC-USD`, { headers: { Origin: 'https://evil.example' } });
    foreign.on('error', () => undefined);
    const refused = new Promise<number>((resolve) => foreign.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    const sio = io(`${t.url}/prices`, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: { Origin: own } });
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
      });
      await connected(sio);
      expect(await refused).toBe(403);
    } finally {
      ws.terminate();
      foreign.terminate();
      sio.disconnect();
    }
  });

  it('refuses a conflate value out of range with INVALID_CONFLATE on SSE', async () => {
    t = await startApp();
    const res = await fetch(`${t.url}/api/prices/stream?pairs=BTC-USD&conflate=abc`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'INVALID_CONFLATE' });
  });
});
