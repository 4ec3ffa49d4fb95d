import { connect as connectRaw, type Socket as NetSocket } from 'node:net';
import WebSocket from 'ws';
import { LifecycleService } from '../src/lifecycle/lifecycle.service';
import { ConnectionRegistry } from '../src/stream/connection-registry';
import { WS_PATH, type Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { publishUntil, until, wsClient, wsOpen, wsRefusal, type WsClient } from './support/sockets';

const ids = (ticks: (Tick | null)[]): string[] => ticks.map((t) => t?.id ?? 'unchanged');


describe('WebSocket /api/ws', () => {
  let t: TestApp;
  const open: WsClient[] = [];
  const connect = async (query: string): Promise<WsClient> => {
    const c = wsClient(t.port, query);
    open.push(c);
    await wsOpen(c);
    return c;
  };
  let price = 50_000;
  const next = () => ++price;

  beforeAll(async () => {
    t = await startApp();
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.ws.terminate();
  });
  afterAll(() => t.close());

  it('streams the latest tick then live ticks as one JSON message each', async () => {
    const latest = await t.publish('BTC-USD', next());
    const before = t.hub.memberships();
    const c = await connect('pairs=BTC-USD,eth/usd');
    const live = [await t.publish('ETH-USD', next()), await t.publish('BTC-USD', next())];
    await until(() => c.messages.length === 3, 'three messages');
    expect(c.messages[0]).toEqual({ type: 'price', ...latest });
    expect(ids(c.ticks())).toEqual(ids([latest, ...live]));
    // Live, the client is a member of its two pairs' sets in the hub, and nothing else.
    expect(t.hub.memberships()).toBe(before + 2);
  });

  it("answers the handshake with the join's catch-up in one write, however long the resume read takes", async () => {
    const missed = await t.publishAll('BTC-USD', [next(), next(), next()]);
    const read = t.log.readAfter.bind(t.log);
    const slow = jest.spyOn(t.log, 'readAfter').mockImplementation(async (point, pairs) => {
      await new Promise((r) => setTimeout(r, 40));
      return read(point, pairs);
    });
    const chunks: string[] = [];
    const socket = connectRaw(t.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => chunks.push(d.toString('latin1')));
    socket.write(`GET /api/prices/ws?pairs=BTC-USD&lastEventId=${missed[0]!.id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await until(() => chunks.join('').includes(missed[2]!.id), 'the catch-up');
    slow.mockRestore();
    socket.destroy();
    // Not the 101 first and the ticks 40 ms later: one chunk, in order.
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatch(/^HTTP\/1\.1 101 /);
    expect(chunks[0].indexOf(missed[1]!.id)).toBeLessThan(chunks[0].indexOf(missed[2]!.id));
  });

  it('resumes with exactly the missed ticks after the client reconnects with lastEventId, which wins over since', async () => {
    const c = await connect('pairs=ETH-USD');
    const seen = await t.publish('ETH-USD', next());
    await until(() => c.ticks().some((x) => x.id === seen?.id), 'a live tick');
    const lastId = c.ticks()[c.ticks().length - 1].id;
    c.ws.close();
    await c.closed;
    const missed = [...(await t.publishAll('ETH-USD', [next(), next()])), ...(await t.publishAll('BTC-USD', [next()]))];
    const again = await connect(`pairs=ETH-USD&since=2020-01-01T00:00:00Z&lastEventId=${lastId}`);
    const live = await t.publish('ETH-USD', next());
    await until(() => again.messages.length === 3, 'missed and live ticks');
    expect(ids(again.ticks())).toEqual(ids([missed[0], missed[1], live]));
  });

  it('resumes from since when no lastEventId is given', async () => {
    const since = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    const after = await t.publishAll('BTC-USD', [next(), next()]);
    const c = await connect(`pairs=BTC-USD&since=${since}`);
    await until(() => c.messages.length === 2, 'the ticks since');
    expect(ids(c.ticks())).toEqual(ids(after));
  });

  it('refuses bad requests before the upgrade with the status and an error body, and keeps serving', async () => {
    const refusal = async (query: string, headers: Record<string, string> = {}) => {
      const { status, body } = await wsRefusal(t.port, query, headers);
      return { status, code: body.code };
    };
    expect(await refusal('pairs=bad!')).toEqual({ status: 400, code: 'INVALID_PAIR' });
    expect(await refusal('pairs=DOGE-USD')).toEqual({ status: 400, code: 'UNSUPPORTED_PAIR' });
    expect(await refusal(`pairs=${Array(51).fill('BTC-USD').join(',')}`)).toEqual({ status: 400, code: 'TOO_MANY_PAIRS' });
    expect(await refusal(`pairs=${'A'.repeat(2000)}`)).toEqual({ status: 400, code: 'INVALID_QUERY' });
    expect(await refusal('pairs=BTC-USD%00')).toEqual({ status: 400, code: 'INVALID_QUERY' });
    expect(await refusal('pairs=BTC-USD&lastEventId=nope')).toEqual({ status: 400, code: 'INVALID_RESUME_POINT' });
    expect(await refusal('pairs=BTC-USD&since=tomorrow')).toEqual({ status: 400, code: 'INVALID_RESUME_POINT' });
    expect(await refusal(`pairs=BTC-USD&lastEventId=${Date.now() + 3_600_000}-0`)).toEqual({ status: 400, code: 'RESUME_POINT_IN_FUTURE' });
    expect(await refusal('pairs=BTC-USD', { Origin: 'http://evil.example' })).toEqual({ status: 403, code: 'FORBIDDEN_ORIGIN' });
    expect(t.app.get(ConnectionRegistry).counts().websocket).toBe(0);

    const c = await connect('pairs=BTC-USD');
    const tick = await t.publish('BTC-USD', next());
    await until(() => c.ticks().some((x) => x.id === tick?.id), 'a tick after the refusals');
  });

  it('leaves upgrades on other paths alone', async () => {
    const other = new WebSocket(`ws://127.0.0.1:${t.port}/api/elsewhere`);
    const failed = new Promise<boolean>((resolve) => {
      other.on('open', () => resolve(false));
      other.on('error', () => resolve(true));
    });
    expect(await failed).toBe(true);
    expect(WS_PATH).toBe('/api/prices/ws');
  });
});

describe('WebSocket /api/ws history gap, limits and liveness', () => {
  it('sends a reset then the latest tick of each pair when the resume point left the window', async () => {
    const t = await startApp({ HISTORY_SIZE: '3' });
    let c: WsClient | undefined;
    try {
      const old = await t.publish('BTC-USD', 1);
      await t.publishAll('BTC-USD', [2, 3, 4, 5]);
      const eth = await t.publish('ETH-USD', 10);
      const btc = await t.publish('BTC-USD', 6);
      c = wsClient(t.port, `pairs=BTC-USD,ETH-USD&lastEventId=${old?.id}`);
      const client = c;
      await until(() => client.messages.length === 3, 'reset and latest ticks');
      expect(c.messages[0]).toEqual({ type: 'reset', reason: 'history_gap', oldestId: expect.any(String), oldestTimestamp: expect.any(String) });
      expect(ids(c.ticks())).toEqual(ids([eth, btc]));
      const live = await t.publish('ETH-USD', 11);
      await until(() => client.messages.length === 4, 'a live tick');
      expect(c.ticks()[2].id).toBe(live?.id);
    } finally {
      c?.ws.terminate();
      await t.close();
    }
  });

  it('refuses connections past the limit with 429 and during shutdown with 503', async () => {
    const t = await startApp({ MAX_STREAM_CONNECTIONS: '1' });
    const c = wsClient(t.port, 'pairs=BTC-USD');
    try {
      await wsOpen(c);
      expect(await wsRefusal(t.port, 'pairs=BTC-USD')).toMatchObject({ status: 429, body: { statusCode: 429, code: 'TOO_MANY_CONNECTIONS' } });
      c.ws.close();
      await c.closed;
      await until(() => t.app.get(ConnectionRegistry).counts().total === 0, 'the slot to be freed');
      t.app.get(LifecycleService).beginShutdown('test');
      expect(await wsRefusal(t.port, 'pairs=BTC-USD')).toMatchObject({ status: 503, body: { code: 'SHUTTING_DOWN' } });
    } finally {
      c.ws.terminate();
      await t.close();
    }
  });

  it('terminates a peer that stops answering pings, which then resumes from its last id', async () => {
    const t = await startApp({ HEARTBEAT_INTERVAL_MS: '100' });
    const releases = t.recordDisconnects();
    const deaf = new WebSocket(`ws://127.0.0.1:${t.port}${WS_PATH}?pairs=BTC-USD`, { autoPong: false });
    const healthy = wsClient(t.port, 'pairs=BTC-USD');
    let again: WsClient | undefined;
    try {
      const got: Tick[] = [];
      deaf.on('message', (data) => got.push(JSON.parse(String(data)) as Tick));
      const closed = new Promise<number>((resolve) => deaf.on('close', (code) => resolve(code)));
      await wsOpen(healthy);
      const seen = await t.publish('BTC-USD', 1);
      await until(() => got.length === 1, 'a tick for the deaf client');
      expect(await closed).toBe(1006);
      await until(() => releases.length > 0, 'the server to release the slot');
      expect(releases).toEqual([['websocket', 'error']]);
      await new Promise((r) => setTimeout(r, 250));
      expect(healthy.ws.readyState).toBe(WebSocket.OPEN);

      const missed = await t.publishAll('BTC-USD', [2, 3]);
      again = wsClient(t.port, `pairs=BTC-USD&lastEventId=${seen?.id}`);
      const client = again;
      await until(() => client.messages.length === 2, 'the missed ticks');
      expect(ids(again.ticks())).toEqual(ids(missed));
    } finally {
      deaf.terminate();
      healthy.ws.terminate();
      again?.ws.terminate();
      await t.close();
    }
  });

  it('terminates a client that stops reading at CLIENT_BUFFER_SIZE messages, while others keep receiving', async () => {
    const t = await startApp({ CLIENT_BUFFER_SIZE: '50' });
    const releases = t.recordDisconnects();
    const stalled = wsClient(t.port, 'pairs=BTC-USD');
    const calm = wsClient(t.port, 'pairs=BTC-USD');
    try {
      await Promise.all([wsOpen(stalled), wsOpen(calm)]);
      (stalled.ws as unknown as { _socket: NetSocket })._socket.pause();
      const { last } = await publishUntil(t.publish, 'BTC-USD', () => releases.some(([, reason]) => reason === 'slow'));
      expect(releases).toEqual([['websocket', 'slow']]);
      await until(() => calm.ticks().some((x) => x.id === last?.id), 'the calm client to catch up', 20_000);
      expect(calm.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      stalled.ws.terminate();
      calm.ws.terminate();
      await t.close();
    }
  });

  it('closes connections with 1012 when the app shuts down', async () => {
    const t = await startApp();
    const c = wsClient(t.port, 'pairs=BTC-USD');
    try {
      await wsOpen(c);
      await t.close();
      const closed = await c.closed;
      expect(closed).toEqual({ code: 1012, reason: expect.stringMatching(/^service restart; reconnect and resume; retry=\d+$/) });
      // Its own hint, uniform in 0..SHUTDOWN_RETRY_SPREAD_MS (1000 by default).
      expect(Number(/retry=(\d+)$/.exec(closed.reason)?.[1])).toBeLessThanOrEqual(1250);
    } finally {
      c.ws.terminate();
      await t.close();
    }
  });
});
