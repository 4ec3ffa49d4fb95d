import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { connect, type PriceClient, type Tick, type Transport } from '../packages/client/src';
import { TRANSPORTS, type Tick as WireTick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { startProxy, type CuttingProxy } from './support/proxy';
import { waitFor } from './support/wait';

/** Short delays so that a reconnect happens within the test. */
const TIMING = { backoff: { baseMs: 50, maxMs: 200, jitter: 'equal' as const }, settleMs: 300, stableMs: 5_000 };
const platform = typeof globalThis.WebSocket === 'function' ? {} : { WebSocket };
const PAIRS = ['BTC-USD', 'ETH-USD'];

/**
 * Per-pair deltas (docs/api.md "Deltas") on every transport, through the client library: a
 * subscriber with `delta` gets exactly the ticks a full subscriber gets (ticker fields that
 * change, stay, come and go), also across a resume, and the wire carries deltas.
 */
describe('deltas (delta=1), every transport', () => {
  let t: TestApp;
  let proxy: CuttingProxy;
  const clients: PriceClient[] = [];
  let price = 100;
  let clock = Date.parse('2026-12-06T12:00:00.000Z');

  beforeEach(async () => {
    t = await startApp({ PAIRS: PAIRS.join(','), HISTORY_SIZE: '500' });
    proxy = await startProxy(t.port);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await proxy.close();
    await t.close();
  });

  const open = (transport: Transport, delta: boolean, lastEventId?: string): Tick[] => {
    const client = connect({ baseUrl: proxy.url, transport, pairs: PAIRS, delta, lastEventId, ...platform, timing: TIMING });
    clients.push(client);
    const ticks: Tick[] = [];
    client.on('price', (tick) => ticks.push(tick));
    return ticks;
  };
  /** A tick with ticker fields, some changing every time, some now and then, one coming and going. */
  const publish = async (pair: string, i: number): Promise<WireTick> => {
    clock += 250 + (i % 7);
    price += i % 2 ? 0.25 : -0.1;
    const tick = await t.log.publish({
      pair,
      price,
      source: 'kraken',
      timestamp: new Date(clock).toISOString(),
      sourceTimestamp: new Date(clock - (i % 3)).toISOString(),
      ...(i % 5 === 4 ? {} : { bid: price - 0.05 }),
      ask: price + 0.05,
      open24h: 95,
      high24h: 100 + Math.floor(i / 10),
      low24h: 90,
      volume24h: 1000 + i * 0.125,
    });
    return tick!;
  };
  const publishMany = async (n: number): Promise<WireTick[]> => {
    const out: WireTick[] = [];
    for (let i = 0; i < n; i++) for (const pair of PAIRS) out.push(await publish(pair, i));
    return out;
  };
  const has = (ticks: Tick[], id: string) => waitFor(() => ticks.some((x) => x.id === id), 10_000, () => `${ticks.length} ticks, last ${ticks.at(-1)?.id}`);

  for (const transport of TRANSPORTS) {
    it(`rebuilds over ${transport} exactly the ticks a full subscriber gets, also after a drop and a resume`, async () => {
      await publishMany(1);
      const full = open(transport, false);
      const delta = open(transport, true);
      const first = await publishMany(1);
      await Promise.all([has(full, first[1].id), has(delta, first[1].id)]);
      const live = await publishMany(20);
      const last = live.at(-1)!.id;
      await Promise.all([has(full, last), has(delta, last)]);
      expect(delta).toEqual(full);
      expect(delta.slice(-live.length)).toEqual(live);

      // The network drops: the delta client resumes from its last id, the replay's first tick of each pair in full, then deltas.
      proxy.cut();
      const missed = await publishMany(5);
      proxy.restore();
      const end = missed.at(-1)!.id;
      await Promise.all([has(full, end), has(delta, end)]);
      expect(delta).toEqual(full);
      expect(delta.slice(-missed.length)).toEqual(missed);

      // A new delta subscriber resuming from an id gets the same ticks as a new full one.
      const resumedFull = open(transport, false, first[0].id);
      const resumedDelta = open(transport, true, first[0].id);
      const more = await publishMany(2);
      await Promise.all([has(resumedFull, more.at(-1)!.id), has(resumedDelta, more.at(-1)!.id)]);
      expect(resumedDelta).toEqual(resumedFull);
      expect(resumedDelta.length).toBe(1 + live.length + missed.length + more.length);
    }, 60_000);
  }

  it('carries deltas on the wire: SSE `event: d` frames after the first tick of each pair, each with its id', async () => {
    await publishMany(1);
    const res = await fetch(`${t.url}/api/prices/stream?pairs=BTC-USD&delta=1`);
    const reader = res.body!.getReader();
    const ticks = await publishMany(3);
    let text = '';
    const decoder = new TextDecoder();
    while (!text.includes(`id: ${ticks.at(-2)!.id}\n`)) text += decoder.decode((await reader.read()).value, { stream: true });
    await reader.cancel();
    const events = text.split('\n\n').filter((e) => e.includes('data: '));
    expect(events.map((e) => /^event: (\w+)/m.exec(e)?.[1])).toEqual(['price', 'd', 'd', 'd']);
    expect(events[1]).toContain(`id: ${ticks[0].id}\n`);
    expect(JSON.parse(/^data: (.*)$/m.exec(events[1])![1])).toEqual(expect.arrayContaining(['BTC-USD']));
  });

  it('carries deltas on the WebSocket feed (`[id, pair, ...values]`) and on Socket.IO (the event `d`)', async () => {
    await publishMany(1);
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/api/prices/ws?pairs=BTC-USD&delta=1`);
    const frames: unknown[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((resolve) => ws.once('open', resolve));
    const socket = io(`http://127.0.0.1:${t.port}/prices`, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { pairs: ['BTC-USD'], delta: true } });
    const events: [string, unknown[]][] = [];
    socket.onAny((event: string, ...args: unknown[]) => events.push([event, args]));
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      await waitFor(() => frames.length >= 1 && events.some(([e]) => e === 'price'), 5000);
      const ticks = await publishMany(2);
      const btc = ticks.filter((x) => x.pair === 'BTC-USD');
      await waitFor(() => frames.length >= 3 && events.filter(([e]) => e === 'd').length >= 2, 5000, () => JSON.stringify({ frames, events }));
      expect(frames.slice(1).map((f) => (f as unknown[])[0])).toEqual(btc.map((x) => x.id));
      expect(frames.slice(1).every((f) => Array.isArray(f) && f[1] === 'BTC-USD')).toBe(true);
      expect(events.filter(([e]) => e === 'd').map(([, args]) => args.slice(0, 2))).toEqual(btc.map((x) => [x.id, 'BTC-USD']));
    } finally {
      ws.close();
      socket.close();
    }
  });

  it('refuses a bad delta value with INVALID_DELTA on every transport, and delta on a legacy route', async () => {
    for (const path of ['/api/prices/stream?delta=yes', '/api/price/stream?delta=1']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'INVALID_DELTA' });
    }
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/api/prices/ws?pairs=BTC-USD`);
    const got: unknown[] = [];
    ws.on('message', (d) => got.push(JSON.parse(String(d))));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', pairs: ['BTC-USD'], delta: 'maybe' }));
    await waitFor(() => got.some((m) => (m as { type?: string }).type === 'error'), 5000);
    expect(got.find((m) => (m as { type?: string }).type === 'error')).toMatchObject({ code: 'INVALID_DELTA', request: 'subscribe' });
    ws.close();
    const socket = io(`http://127.0.0.1:${t.port}/prices`, { transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const ack = await socket.timeout(5000).emitWithAck('subscribe', { pairs: ['BTC-USD'], delta: 2 });
      expect(ack).toMatchObject({ ok: false, error: { code: 'INVALID_DELTA' } });
    } finally {
      socket.close();
    }
  });
});
