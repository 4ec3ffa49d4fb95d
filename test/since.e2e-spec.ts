import type { Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { deletePrefix, randomPrefix } from './support/redis';
import { connected, ioClient, until, wsClient, wsOpen } from './support/sockets';
import { openStream, sleep, waitFor } from './support/sse';

describe.each([
  ['in memory', () => ({})],
  // The lease holder polls (simulated) once at start, then not for an hour.
  ['with Redis', () => ({ REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', REDIS_PREFIX: randomPrefix(), POLL_INTERVAL_MS: '3600000' })],
])('since compares with the tick\'s own timestamp, %s', (_name, env) => {
  let t: TestApp;
  let prefix: string | undefined;
  /** Retrieved before `since`, committed (its id) after it. */
  let early: Tick;
  /** Retrieved after `since`. */
  let late: Tick;
  let since: number;
  beforeAll(async () => {
    const e: Record<string, string> = env();
    prefix = e.REDIS_PREFIX;
    t = await startApp(e);
    if (prefix) {
      await waitFor(async () => {
        const { pairs } = (await (await fetch(`${t.url}/api/pairs`)).json()) as { pairs: { latest: unknown }[] };
        return pairs.every((p) => p.latest !== null);
      }, 5000);
    }
    // `since` (20 ms ago, below) must lie past the log's start-up floor (the moment the app built
    // its log): a time at or before the floor is answered with a reset, not a replay. A quick
    // start reached here within 20 ms of it, and Socket.IO's subscribe then answered
    // recovered: false (CI, twice). Also, with Redis, the poll's ticks are stamped before it.
    await sleep(50);
    const retrievedAt = Date.now() - 40;
    since = retrievedAt + 20;
    await sleep(5);
    early = (await t.log.publish({ pair: 'BTC-USD', price: 50_001, source: 'simulated', timestamp: new Date(retrievedAt).toISOString() }))!;
    await sleep(2);
    late = (await t.publish('BTC-USD', 50_002))!;
    expect(Number(early.id.split('-')[0])).toBeGreaterThanOrEqual(since);
    expect(Date.parse(early.timestamp)).toBeLessThan(since);
    await waitFor(async () => ((await (await fetch(`${t.url}/api/prices/BTC-USD`)).json()) as { id?: string }).id === late.id, 5000);
  });
  afterAll(async () => {
    await t.close();
    if (prefix) await deletePrefix(prefix);
  });

  it('leaves a tick stamped before since out of the history', async () => {
    const page = (await (await fetch(`${t.url}/api/prices/BTC-USD/history?since=${since}`)).json()) as { updates: Tick[] };
    expect(page.updates.map((u) => u.id)).toEqual([late.id]);
  });

  it('replays the same ticks on SSE, WebSocket and Socket.IO', async () => {
    const sse = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD&since=${since}`);
    const ws = wsClient(t.port, `pairs=BTC-USD&since=${since}`);
    const io = ioClient(t.url);
    try {
      await wsOpen(ws);
      await connected(io.socket);
      expect(await io.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'], since })).toMatchObject({ ok: true, recovered: true });
      await sse.until((s) => s.ticks().length >= 1);
      await until(() => ws.ticks().length >= 1 && io.got.ticks.length >= 1, 'the replays');
      await sleep(100);
      for (const ids of [sse.ticks().map((x) => x.id), ws.ticks().map((x) => x.id), io.got.ticks.map((x) => x.id)]) expect(ids).toEqual([late.id]);
    } finally {
      sse.close();
      ws.ws.close();
      io.close();
    }
  });
});
