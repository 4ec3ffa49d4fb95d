import type { Socket as NetSocket } from 'node:net';
import WebSocket from 'ws';
import { LifecycleService } from '../src/lifecycle/lifecycle.service';
import { PricesGateway } from '../src/socketio/prices.gateway';
import { ConnectionRegistry } from '../src/stream/connection-registry';
import type { SubscribeAck, Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { connected, connectError, ioClient, pollingHandshake, publishUntil, tickOver, until, websocketHandshake, type PricesClient, type RawHandshake } from './support/sockets';

/** Lets a test send what the typed client would refuse to compile. */
type LooseEmitter = {
  emit(event: string, ...args: unknown[]): void;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
};
const loose = (socket: PricesClient): LooseEmitter => socket as unknown as LooseEmitter;
const ids = (ticks: (Tick | null)[]): string[] => ticks.map((t) => t?.id ?? 'unchanged');


describe('Socket.IO /prices', () => {
  let t: TestApp;
  const clients: { close(): void }[] = [];
  const track = <C extends { close(): void }>(c: C): C => {
    clients.push(c);
    return c;
  };
  let price = 90_000;
  const next = () => ++price;

  beforeAll(async () => {
    t = await startApp({ SOCKET_EVENTS_PER_SECOND: '1000' });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => t.close());

  it('delivers the latest tick then live ticks after subscribe, and stops after unsubscribe', async () => {
    const latest = await t.publish('BTC-USD', next());
    const c = track(ioClient(t.url));
    await connected(c.socket);
    const ack = await c.socket.emitWithAck('subscribe', { pairs: ['btc/usd'] });
    expect(ack).toEqual({ ok: true, pairs: ['BTC-USD'], recovered: false });
    const live = await t.publishAll('BTC-USD', [next(), next()]);
    await until(() => c.got.ticks.length === 3, 'three ticks');
    expect(ids(c.got.ticks)).toEqual(ids([latest, ...live]));

    expect(await c.socket.emitWithAck('unsubscribe', { pairs: 'BTC-USD' })).toEqual({ ok: true, pairs: [] });
    await t.publish('BTC-USD', next());
    const probe = track(ioClient(t.url));
    await connected(probe.socket);
    await probe.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'] });
    const after = await t.publish('BTC-USD', next());
    await until(() => probe.got.ticks.some((x) => x.id === after?.id), 'the probe to get the tick');
    expect(c.got.ticks).toHaveLength(3);
  });

  it('answers every malformed request with an error ack and keeps serving when payloads are bad', async () => {
    const c = track(ioClient(t.url));
    await connected(c.socket);
    const ask = (event: string, ...args: unknown[]) => loose(c.socket).timeout(2000).emitWithAck(event, ...args);
    const code = async (event: string, ...args: unknown[]) => ((await ask(event, ...args)) as Extract<SubscribeAck, { ok: false }>).error.code;

    expect(await code('subscribe', 'BTC-USD')).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', null)).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', ['BTC-USD'])).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', { pairs: 42 })).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', { pairs: ['BTC-USD', 7] })).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', { pairs: ['BTC-USD'], lastEventId: 12 })).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', { pairs: ['BTC-USD'], since: { at: 1 } })).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', { pairs: ['BTC-USD'], extra: true })).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', JSON.parse('{"pairs":["BTC-USD"],"__proto__":{"polluted":true}}'))).toBe('INVALID_PAYLOAD');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await code('subscribe', { pairs: Array(51).fill('BTC-USD') })).toBe('TOO_MANY_PAIRS');
    expect(await code('subscribe', { pairs: [] })).toBe('INVALID_PAIR');
    expect(await code('subscribe', { pairs: ['bad!'] })).toBe('INVALID_PAIR');
    expect(await code('subscribe', { pairs: ['B'.repeat(5000)] })).toBe('INVALID_PAIR');
    expect(await code('subscribe', { pairs: ['DOGE-USD'] })).toBe('UNSUPPORTED_PAIR');
    expect(await code('subscribe', { pairs: ['BTC-USD'], lastEventId: 'nope' })).toBe('INVALID_RESUME_POINT');
    expect(await code('subscribe', { pairs: ['BTC-USD'], lastEventId: '1'.repeat(500) })).toBe('INVALID_RESUME_POINT');
    expect(await code('subscribe', { pairs: ['BTC-USD'], since: 'tomorrow' })).toBe('INVALID_RESUME_POINT');
    expect(await code('subscribe', { pairs: ['BTC-USD'], lastEventId: `${Date.now() + 3_600_000}-0` })).toBe('RESUME_POINT_IN_FUTURE');
    expect(await code('subscribe', { pairs: ['BTC-USD'], since: Date.now() + 3_600_000 })).toBe('RESUME_POINT_IN_FUTURE');
    expect(await code('unsubscribe', { pairs: 7 })).toBe('INVALID_PAYLOAD');
    expect(await code('unsubscribe', 'BTC-USD')).toBe('INVALID_PAYLOAD');
    expect(await code('subscribe', { pairs: ['BTC-USD'] }, 'second argument')).toBe('INVALID_PAYLOAD');
    expect(await code('nonsense', {})).toBe('INVALID_PAYLOAD');

    expect(c.socket.connected).toBe(true);
    const other = track(ioClient(t.url));
    await connected(other.socket);
    expect(await c.socket.emitWithAck('subscribe', { pairs: ['ETH-USD'] })).toMatchObject({ ok: true, pairs: ['ETH-USD'] });
    expect(await other.socket.emitWithAck('subscribe', { pairs: ['ETH-USD'] })).toMatchObject({ ok: true });
    const tick = await t.publish('ETH-USD', next());
    await until(() => [c, other].every((x) => x.got.ticks.some((y) => y.id === tick?.id)), 'both clients to get the tick');
  });

  it('sends each tick once when a socket subscribes to the same pair several times', async () => {
    const c = track(ioClient(t.url));
    await connected(c.socket);
    const base = await t.publish('BTC-USD', next());
    await c.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'] });
    await c.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'], lastEventId: base?.id });
    expect(await c.socket.emitWithAck('subscribe', { pairs: ['BTC-USD', 'ETH-USD'] })).toMatchObject({ ok: true, pairs: ['BTC-USD', 'ETH-USD'] });
    const live = [...(await t.publishAll('BTC-USD', [next(), next()])), ...(await t.publishAll('ETH-USD', [next()]))];
    await until(() => c.got.ticks.some((x) => x.id === live[2].id), 'the last tick');
    await new Promise((r) => setTimeout(r, 50));
    const counts = new Map<string, number>();
    for (const x of c.got.ticks) counts.set(x.id, (counts.get(x.id) ?? 0) + 1);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(ids(c.got.ticks.filter((x) => x.pair === 'BTC-USD'))).toEqual(ids([base, live[0], live[1]]));
  });

  it('delivers every tick once and in order to sockets that resume while ticks keep coming', async () => {
    const all: Tick[] = [];
    const first = await t.publish('BTC-USD', next());
    if (first) all.push(first);
    const publisher = (async () => {
      for (let i = 0; i < 300; i++) {
        const tick = await t.publish(i % 2 ? 'BTC-USD' : 'ETH-USD', next());
        if (tick) all.push(tick);
        if (i % 3 === 0) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const resumed: { from: string; got: { ticks: Tick[] } }[] = [];
    for (let k = 0; k < 8; k++) {
      const from = all[all.length - 1].id;
      const c = track(k % 2 ? ioClient(t.url) : ioClient(t.url, { auth: { pairs: ['BTC-USD', 'ETH-USD'], lastEventId: from } }));
      await connected(c.socket);
      if (k % 2) expect(await c.socket.emitWithAck('subscribe', { pairs: ['BTC-USD', 'ETH-USD'], lastEventId: from })).toMatchObject({ recovered: true });
      resumed.push({ from, got: c.got });
      await tickOver();
    }
    await publisher;
    for (const { from, got } of resumed) {
      const expected = all.slice(all.findIndex((x) => x.id === from) + 1);
      expect(expected.length).toBeGreaterThan(0);
      await until(() => got.ticks.length >= expected.length, 'every tick after the resume point');
      await new Promise((r) => setTimeout(r, 20));
      expect(ids(got.ticks)).toEqual(ids(expected));
    }
  });

  it('resumes with exactly the missed ticks, then live ones, when the server drops the transport and the auth callback gives the last id', async () => {
    const first = await t.publish('BTC-USD', next());
    let lastId: string | undefined;
    const c = track(
      ioClient(t.url, {
        reconnectionDelay: 300,
        randomizationFactor: 0,
        auth: (cb: (auth: object) => void) => cb({ pairs: ['BTC-USD'], lastEventId: lastId }),
      }),
    );
    c.socket.on('price', (tick) => (lastId = tick.id));
    await connected(c.socket);
    await until(() => c.got.ticks.length === 1, 'the latest tick from the auth subscription');
    expect(c.got.ticks[0].id).toBe(first?.id);

    const gone = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
    const ns = t.app.get(PricesGateway).namespace;
    for (const s of ns?.sockets.values() ?? []) s.conn.close();
    expect(await gone).toBe('transport close');
    const missed = await t.publishAll('BTC-USD', [next(), next(), next()]);
    await until(() => c.socket.connected, 'the automatic reconnection');
    await until(() => c.got.ticks.length === 4, 'the missed ticks');
    const live = await t.publish('BTC-USD', next());
    await until(() => c.got.ticks.length === 5, 'the live tick');
    expect(ids(c.got.ticks)).toEqual(ids([first, ...missed, live]));
    expect(c.got.resets).toEqual([]);
  });

  it('resumes with exactly the missed ticks when the client reconnects itself and subscribes with lastEventId', async () => {
    const c = track(ioClient(t.url));
    await connected(c.socket);
    await c.socket.emitWithAck('subscribe', { pairs: ['ETH-USD'] });
    const seen = await t.publishAll('ETH-USD', [next()]);
    await until(() => c.got.ticks.some((x) => x.id === seen[0].id), 'a live tick');
    const lastId = c.got.ticks[c.got.ticks.length - 1].id;
    c.socket.disconnect();
    const missed = [...(await t.publishAll('ETH-USD', [next(), next()])), ...(await t.publishAll('BTC-USD', [next()]))];
    c.got.ticks.length = 0;
    c.socket.connect();
    await connected(c.socket);
    const ack = await c.socket.emitWithAck('subscribe', { pairs: ['ETH-USD'], lastEventId: lastId, since: '2020-01-01T00:00:00Z' });
    expect(ack).toEqual({ ok: true, pairs: ['ETH-USD'], recovered: true });
    const live = await t.publish('ETH-USD', next());
    await until(() => c.got.ticks.length === 3, 'missed and live ticks');
    expect(ids(c.got.ticks)).toEqual(ids([missed[0], missed[1], live]));
  });

  it('resumes through the auth callback after a client-side disconnect', async () => {
    let lastId: string | undefined;
    const c = track(ioClient(t.url, { auth: (cb: (auth: object) => void) => cb({ pairs: 'BTC-USD', lastEventId: lastId }) }));
    c.socket.on('price', (tick) => (lastId = tick.id));
    await connected(c.socket);
    const seen = await t.publish('BTC-USD', next());
    await until(() => lastId === seen?.id, 'a live tick');
    c.socket.disconnect();
    const missed = await t.publishAll('BTC-USD', [next(), next()]);
    c.got.ticks.length = 0;
    c.socket.connect();
    await until(() => c.got.ticks.length === 2, 'the missed ticks');
    expect(ids(c.got.ticks)).toEqual(ids(missed));
  });

  it('works over the long-polling transport', async () => {
    const c = track(ioClient(t.url, { transports: ['polling'] }));
    await connected(c.socket);
    expect(c.socket.io.engine.transport.name).toBe('polling');
    const ack = await c.socket.emitWithAck('subscribe', { pairs: ['ETH-USD'] });
    expect(ack).toMatchObject({ ok: true });
    const live = await t.publishAll('ETH-USD', [next(), next()]);
    await until(() => live.every((l) => c.got.ticks.some((x) => x.id === l.id)), 'ticks over polling');
  });

  it('refuses a handshake whose auth is invalid with a connect_error naming the code', async () => {
    const c = track(ioClient(t.url, { auth: { pairs: ['DOGE-USD'] }, reconnection: false }));
    const err = await connectError(c.socket);
    expect(err.data).toMatchObject({ code: 'UNSUPPORTED_PAIR' });
    const poisoned = track(ioClient(t.url, { auth: JSON.parse('{"__proto__":{"x":1}}') as object, reconnection: false }));
    expect((await connectError(poisoned.socket)).data).toMatchObject({ code: 'INVALID_PAYLOAD' });
  });

  it('refuses a WebSocket handshake from a foreign Origin when CORS_ORIGINS is empty', async () => {
    const c = track(ioClient(t.url, { reconnection: false, extraHeaders: { Origin: 'http://evil.example' } }));
    await expect(connectError(c.socket)).resolves.toBeInstanceOf(Error);
    const same = track(ioClient(t.url, { reconnection: false, extraHeaders: { Origin: t.url } }));
    await connected(same.socket);
  });
});

describe('Socket.IO /prices limits', () => {
  it('refuses engine.io handshakes past MAX_STREAM_CONNECTIONS_PER_IP at the handshake, polling and websocket, counting those that join no namespace', async () => {
    const t = await startApp({ MAX_STREAM_CONNECTIONS_PER_IP: '4', TRUST_PROXY: 'loopback' });
    const hostile = { 'X-Forwarded-For': '203.0.113.7' };
    const opened: RawHandshake[] = [];
    let other: ReturnType<typeof ioClient> | undefined;
    try {
      // The cap's worth of bare handshakes: accepted, and each holds a slot though it joins no namespace.
      for (let i = 0; i < 2; i++) opened.push(await pollingHandshake(t.url, hostile), await websocketHandshake(t.port, hostile));
      expect(opened.map((h) => h.status)).toEqual([200, 101, 200, 101]);
      expect(t.app.get(ConnectionRegistry).counts().socketio).toBe(4);

      // Past it, every handshake is refused as SSE and WebSocket refuse: 429 TOO_MANY_CONNECTIONS, nothing held.
      const refused = [...(await Promise.all([1, 2, 3].map(() => pollingHandshake(t.url, hostile)))), ...(await Promise.all([1, 2, 3].map(() => websocketHandshake(t.port, hostile))))];
      for (const r of refused) {
        expect(r.status).toBe(429);
        expect(JSON.parse(r.body)).toEqual({ statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: expect.any(String) });
      }
      expect(t.app.get(ConnectionRegistry).counts().socketio).toBe(4);

      // Another address streams meanwhile.
      const streaming = ioClient(t.url, { reconnection: false, extraHeaders: { 'X-Forwarded-For': '203.0.113.8' }, auth: { pairs: ['BTC-USD'] } });
      other = streaming;
      await connected(streaming.socket);
      const tick = await t.publish('BTC-USD', 91_234);
      await until(() => streaming.got.ticks.some((x) => x.id === tick?.id), 'the other address to get the tick');

      // Closed handshakes give their slots back.
      await Promise.all(opened.splice(0).map((h) => h.close()));
      await until(() => t.app.get(ConnectionRegistry).counts().socketio === 1, 'the bare handshakes’ slots to be freed');
      const again = await websocketHandshake(t.port, hostile);
      opened.push(again);
      expect(again.status).toBe(101);
    } finally {
      other?.close();
      await Promise.all(opened.map((h) => h.close()));
      await t.close();
    }
  });

  it('refuses connections past MAX_STREAM_CONNECTIONS_PER_IP with TOO_MANY_CONNECTIONS, and during shutdown', async () => {
    const t = await startApp({ MAX_STREAM_CONNECTIONS_PER_IP: '1' });
    const a = ioClient(t.url, { reconnection: false });
    await connected(a.socket);
    const b = ioClient(t.url, { reconnection: false });
    try {
      // Refused at the handshake (HTTP 429): a transport error to socket.io-client, which retries it with backoff.
      await expect(connectError(b.socket)).resolves.toBeInstanceOf(Error);
      expect(b.socket.connected).toBe(false);
      expect(t.app.get(ConnectionRegistry).counts().socketio).toBe(1);
      a.close();
      await until(() => t.app.get(ConnectionRegistry).counts().socketio === 0, 'the slot to be freed');
      t.app.get(LifecycleService).beginShutdown('test');
      b.socket.connect();
      await expect(connectError(b.socket)).resolves.toBeInstanceOf(Error);
      expect(b.socket.connected).toBe(false);
    } finally {
      a.close();
      b.close();
      await t.close();
    }
  });

  it('answers RATE_LIMITED and then disconnects a flooding client, while another client keeps receiving', async () => {
    const t = await startApp({ SOCKET_EVENTS_PER_SECOND: '5' });
    const flood = ioClient(t.url, { reconnection: false });
    const calm = ioClient(t.url);
    try {
      await Promise.all([connected(flood.socket), connected(calm.socket)]);
      await calm.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'] });
      const acks: SubscribeAck[] = [];
      const reason = new Promise<string>((resolve) => flood.socket.once('disconnect', resolve));
      for (let i = 0; i < 30; i++) flood.socket.emit('subscribe', { pairs: ['BTC-USD'] }, (ack) => acks.push(ack));
      const published = await t.publishAll('BTC-USD', [1, 2, 3]);
      expect(await reason).toBe('io server disconnect');
      // Events accepted in the same read as the disconnecting one are dropped with the socket.
      expect(acks.some((a) => !a.ok && a.error.code === 'RATE_LIMITED')).toBe(true);
      expect(acks.every((a) => a.ok || a.error.code === 'RATE_LIMITED')).toBe(true);
      expect(flood.got.notices).toContainEqual(expect.objectContaining({ code: 'RATE_LIMITED' }));
      await until(() => published.every((p) => calm.got.ticks.some((x) => x.id === p.id)), 'the calm client to get every tick');
      await until(() => t.app.get(ConnectionRegistry).counts().socketio === 1, 'the flooder slot to be freed');
    } finally {
      flood.close();
      calm.close();
      await t.close();
    }
  });

  it('cuts off a socket that stops reading at CLIENT_BUFFER_SIZE packets, while others keep receiving', async () => {
    const t = await startApp({ CLIENT_BUFFER_SIZE: '50' });
    const releases = t.recordDisconnects();
    const calm = ioClient(t.url);
    // socket.io-client always reads, so the stalled client speaks engine.io over a raw WebSocket.
    const raw = new WebSocket(`ws://127.0.0.1:${t.port}/socket.io/?EIO=4&transport=websocket`);
    raw.on('error', () => undefined);
    const frames: string[] = [];
    raw.on('message', (data) => {
      const text = String(data);
      frames.push(text);
      if (text.startsWith('0{')) raw.send('40/prices,');
      else if (text.startsWith('40/prices,')) raw.send('42/prices,0["subscribe",{"pairs":["BTC-USD"]}]');
    });
    try {
      await connected(calm.socket);
      await calm.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'] });
      await until(() => frames.some((f) => f.startsWith('43/prices,0[{"ok":true')), 'the raw client subscription ack');
      (raw as unknown as { _socket: NetSocket })._socket.pause();

      const { last, sent } = await publishUntil(t.publish, 'BTC-USD', () => releases.some(([, reason]) => reason === 'slow'));
      expect(releases.filter(([, reason]) => reason === 'slow')).toEqual([['socketio', 'slow']]);
      expect(calm.socket.connected).toBe(true);
      await until(() => calm.got.ticks.some((x) => x.id === last?.id), 'the calm client to catch up', 20_000);
      expect(calm.got.ticks.length).toBeGreaterThanOrEqual(sent);
    } finally {
      raw.terminate();
      calm.close();
      await t.close();
    }
  });
});

describe('Socket.IO /prices history gap and shutdown', () => {
  it('sends a reset and the latest tick of each pair when the resume point left the window', async () => {
    const t = await startApp({ HISTORY_SIZE: '3' });
    const c = ioClient(t.url);
    try {
      const old = await t.publish('BTC-USD', 1);
      await t.publishAll('BTC-USD', [2, 3, 4, 5]);
      const eth = await t.publish('ETH-USD', 10);
      const btc = await t.publish('BTC-USD', 6);
      await connected(c.socket);
      const ack = await c.socket.emitWithAck('subscribe', { pairs: ['BTC-USD', 'ETH-USD'], lastEventId: old?.id });
      expect(ack).toEqual({ ok: true, pairs: ['BTC-USD', 'ETH-USD'], recovered: false });
      await until(() => c.got.ticks.length === 2, 'the latest ticks');
      expect(c.got.resets).toEqual([{ reason: 'history_gap', oldestId: expect.any(String), oldestTimestamp: expect.any(String) }]);
      expect(ids(c.got.ticks)).toEqual(ids([eth, btc]));
      const live = await t.publish('ETH-USD', 11);
      await until(() => c.got.ticks.length === 3, 'a live tick');
      expect(c.got.ticks[2].id).toBe(live?.id);
    } finally {
      c.close();
      await t.close();
    }
  });

  it('tells sockets to reconnect and closes their transport when the app shuts down', async () => {
    const t = await startApp();
    const c = ioClient(t.url, { reconnectionDelay: 5000 });
    try {
      await connected(c.socket);
      await c.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'] });
      const reason = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
      await t.close();
      expect(await reason).toBe('transport close');
      expect(c.got.notices).toContainEqual(expect.objectContaining({ code: 'SHUTTING_DOWN', retryMs: expect.any(Number) }));
      expect(c.got.notices.find((n) => n.code === 'SHUTTING_DOWN')?.retryMs).toBeLessThanOrEqual(1250);
      expect(c.socket.active).toBe(true);
    } finally {
      c.close();
      await t.close();
    }
  });
});
