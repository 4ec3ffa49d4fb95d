import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { LifecycleService } from '../src/lifecycle/lifecycle.service';
import { ConnectionRegistry } from '../src/stream/connection-registry';
import { startApp, type TestApp } from './support/app';
import { getJson, openStream, sleep, type RawStream } from './support/sse';

describe('SSE over raw HTTP', () => {
  let t: TestApp;
  const open: RawStream[] = [];
  const stream = async (path: string, headers: Record<string, string> = {}) => {
    const s = await openStream(`${t.url}${path}`, headers);
    open.push(s);
    return s;
  };
  beforeAll(async () => {
    t = await startApp({ PAIRS: 'BTC-USD,ETH-USD', HEARTBEAT_INTERVAL_MS: '100', SSE_RETRY_MS: '1234' });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });
  afterAll(() => t.close());

  it('sends the SSE headers, retry first, then price events with ids and the tick as data', async () => {
    const s = await stream('/api/prices/stream?pairs=BTC-USD');
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-cache, no-transform');
    expect(s.headers['x-accel-buffering']).toBe('no');
    // The connection ends with the stream: no next request is read on it (http/release-parser.ts).
    expect(s.headers.connection).toBe('close');
    const a = (await t.publish('BTC-USD', 97000.5))!;
    const b = (await t.publish('BTC-USD', 97001.25))!;
    await s.until(() => s.ticks().length === 2);
    expect(s.text().startsWith('retry: 1234\n\n')).toBe(true);
    expect(s.text()).toContain(`event: price\nid: ${a.id}\ndata: ${JSON.stringify(a)}\n\n`);
    expect(s.frames().filter((f) => f.event === 'price')).toEqual([
      { event: 'price', id: a.id, data: JSON.stringify(a) },
      { event: 'price', id: b.id, data: JSON.stringify(b) },
    ]);
  });

  it('sends a comment heartbeat every HEARTBEAT_INTERVAL_MS', async () => {
    const opened = performance.now();
    const s = await stream('/api/prices/stream');
    const beats = () => s.frames().filter((f) => f.comment !== undefined).length;
    // Every 100 ms: four come, and no more than the time passed allows (one timer for all
    // streams, so the first may come early; a loaded machine may delay them, never add any).
    await s.until(() => beats() >= 4);
    await sleep(300);
    const elapsed = performance.now() - opened;
    expect(beats()).toBeGreaterThanOrEqual(4);
    expect(beats()).toBeLessThanOrEqual(Math.floor(elapsed / 100) + 1);
    expect(s.text()).toContain('\n\n:\n\n');
  });

  it('streams every configured pair when none is named, starting with the latest tick of each', async () => {
    const btc = (await t.publish('BTC-USD', 97100))!;
    const eth = (await t.publish('ETH-USD', 3500))!;
    const s = await stream('/api/prices/stream');
    await s.until(() => s.ticks().length === 2);
    const live = (await t.publish('ETH-USD', 3501))!;
    await s.until(() => s.ticks().length === 3);
    expect(s.ticks()).toEqual([btc, eth, live]);
  });

  it('streams only the named pairs', async () => {
    const s = await stream('/api/prices/stream?pairs=eth/usd');
    await s.until(() => s.ticks().length === 1);
    await t.publish('BTC-USD', 97200);
    const eth = (await t.publish('ETH-USD', 3600))!;
    await s.until(() => s.ticks().length === 2);
    expect(s.ticks().map((x) => x.pair)).toEqual(['ETH-USD', 'ETH-USD']);
    expect(s.ticks()[1]).toEqual(eth);
  });

  it('keeps the legacy /api/price/stream: named price events with ids, BTC-USD by default, since honoured', async () => {
    const from = Date.now();
    await sleep(2);
    const a = (await t.publish('BTC-USD', 97300))!;
    await t.publish('ETH-USD', 3700);
    const b = (await t.publish('BTC-USD', 97301))!;
    const s = await stream(`/api/price/stream?since=${from}`);
    await s.until(() => s.ticks().length === 2);
    expect(s.frames().filter((f) => f.data)).toEqual([
      { event: 'price', id: a.id, data: JSON.stringify({ ...a, symbol: 'BTC', name: 'Bitcoin' }) },
      { event: 'price', id: b.id, data: JSON.stringify({ ...b, symbol: 'BTC', name: 'Bitcoin' }) },
    ]);
    const eth = await stream('/api/price/stream?pairs=ETH-USD');
    await eth.until(() => eth.ticks().length === 1);
    expect(eth.ticks()[0].pair).toBe('ETH-USD');
  });

  it('keeps the legacy /stream: unnamed events with ids whose data is the full tick with symbol and name', async () => {
    const from = new Date().toISOString();
    await sleep(2);
    const a = (await t.publish('BTC-USD', 97400))!;
    const s = await stream(`/stream?since=${from}`);
    await s.until(() => s.ticks().some((x) => x.id === a.id));
    const b = (await t.publish('BTC-USD', 97401))!;
    await s.until(() => s.ticks().some((x) => x.id === b.id));
    const frames = s.frames().filter((f) => f.data);
    expect(frames.map((f) => f.id)).toEqual([a.id, b.id]);
    expect(frames.every((f) => f.event === undefined)).toBe(true);
    expect(frames.at(-1)).toEqual({ id: b.id, data: JSON.stringify({ ...b, symbol: 'BTC', name: 'Bitcoin' }) });
    expect(s.ticks().at(-1)).toMatchObject({ timestamp: b.timestamp, price: 97401 });
    expect(s.ticks().every((x) => x.pair === 'BTC-USD')).toBe(true);
  });

  it('resumes the legacy routes from Last-Event-ID too', async () => {
    const a = (await t.publish('BTC-USD', 97500))!;
    const b = (await t.publish('BTC-USD', 97501))!;
    const s = await stream('/stream', { 'Last-Event-ID': a.id });
    await s.until(() => s.ticks().length === 1);
    expect(s.ticks()).toEqual([{ ...b, symbol: 'BTC', name: 'Bitcoin' }]);
  });

  it('prefers the Last-Event-ID header over lastEventId and lastEventId over since', async () => {
    const a = (await t.publish('BTC-USD', 97600))!;
    const b = (await t.publish('BTC-USD', 97601))!;
    const c = (await t.publish('BTC-USD', 97602))!;
    const both = await stream(`/api/prices/stream?pairs=BTC-USD&lastEventId=${a.id}&since=2020-01-01`, { 'Last-Event-ID': b.id });
    const query = await stream(`/api/prices/stream?pairs=BTC-USD&lastEventId=${a.id}&since=2020-01-01`);
    await both.until(() => both.ticks().length === 1);
    await query.until(() => query.ticks().length === 2);
    await sleep(50);
    expect(both.ticks()).toEqual([c]);
    expect(query.ticks()).toEqual([b, c]);
    expect(query.frames().some((f) => f.event === 'reset')).toBe(false);
  });

  it.each([
    ['a malformed since', '/api/prices/stream?since=yesterday', {}, 'INVALID_RESUME_POINT'],
    ['a future since', `/api/prices/stream?since=${Date.now() + 3_600_000}`, {}, 'RESUME_POINT_IN_FUTURE'],
    ['a malformed Last-Event-ID header', '/api/prices/stream', { 'Last-Event-ID': 'not-an-id' }, 'INVALID_RESUME_POINT'],
    ['a Last-Event-ID from the future', '/api/prices/stream', { 'Last-Event-ID': `${Date.now() + 3_600_000}-0` }, 'RESUME_POINT_IN_FUTURE'],
    ['a malformed lastEventId', '/api/prices/stream?lastEventId=12', {}, 'INVALID_RESUME_POINT'],
    ['a malformed pair', '/api/prices/stream?pairs=BTC-USD,bad!', {}, 'INVALID_PAIR'],
    ['an unknown pair', '/api/prices/stream?pairs=DOGE-USD', {}, 'UNSUPPORTED_PAIR'],
    ['too many pairs', `/api/prices/stream?pairs=${Array(51).fill('BTC-USD').join(',')}`, {}, 'TOO_MANY_PAIRS'],
    ['an over-long query value', `/api/prices/stream?pairs=${'A'.repeat(2000)}`, {}, 'INVALID_QUERY'],
    ['a control character', '/api/prices/stream?pairs=BTC-USD%00', {}, 'INVALID_QUERY'],
    ['a malformed since on /stream', '/stream?since=soon', {}, 'INVALID_RESUME_POINT'],
    ['a malformed pair on /api/price/stream', '/api/price/stream?pairs=x', {}, 'INVALID_PAIR'],
  ])('answers 400 with a JSON error before any stream for %s', async (_label, path, headers: Record<string, string>, code) => {
    const res = await getJson(`${t.url}${path}`, headers);
    expect(res.status).toBe(400);
    expect(res.contentType).toMatch(/^application\/json/);
    expect(res.body).toEqual({ statusCode: 400, code, message: expect.any(String) });
  });

  it('answers a stream alike whether the stream door reads its request or Node does (its head in two reads), and only Node keeps a parser until the head is out', async () => {
    const port = Number(new URL(t.url).port);
    const served: (Socket & { parser?: unknown })[] = [];
    const server = t.app.getHttpServer() as Server;
    const onConnection = (s: Socket) => served.push(s);
    server.on('connection', onConnection);
    const head = 'GET /api/prices/stream?pairs=ETH-USD HTTP/1.1\r\nHost: x\r\nX-Request-Id: same-1\r\n';
    const raw = (parts: string[]) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('connect', async () => {
        for (const part of parts) {
          socket.write(part);
          await sleep(50);
        }
      });
      return { socket, text: () => text.replace(/\r\nDate: [^\r]*\r\n/, '\r\nDate: D\r\n') };
    };
    const door = raw([`${head}\r\n`]);
    const node = raw([head, '\r\n']);
    try {
      for (let i = 0; i < 300 && !(door.text().includes('retry:') && node.text().includes('retry:')); i++) await sleep(10);
      const tick = (await t.publish('ETH-USD', 3456.5))!;
      for (let i = 0; i < 300 && !(door.text().includes(tick.id) && node.text().includes(tick.id)); i++) await sleep(10);
      expect(door.text()).toContain(`id: ${tick.id}`);
      expect(door.text()).toBe(node.text());
      expect(door.text()).toMatch(/^HTTP\/1\.1 200 OK\r\nX-Request-Id: same-1\r\n[\s\S]*Date: D\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n/);
      expect(served).toHaveLength(2);
      // The door's connection never had a parser; Node's gave its back once the head was out (http/release-parser.ts).
      expect(served.map((s) => (s.parser === undefined ? 'never' : s.parser === null ? 'given back' : 'kept')).sort()).toEqual(['given back', 'never']);
    } finally {
      server.off('connection', onConnection);
      door.socket.destroy();
      node.socket.destroy();
    }
  });

  it("counts a client's reset of a stream the door served as the client's close, not an error", async () => {
    // The streams of the tests before are gone first (their closes are counted too).
    const registry = t.app.get(ConnectionRegistry);
    for (let i = 0; i < 300 && registry.counts().total !== 0; i++) await sleep(10);
    expect(registry.counts().total).toBe(0);
    const releases = t.recordDisconnects();
    const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.write('GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\nHost: x\r\n\r\n');
    for (let i = 0; i < 300 && !text.includes('retry:'); i++) await sleep(10);
    expect(text).toContain('retry:');
    socket.resetAndDestroy();
    for (let i = 0; i < 300 && releases.length === 0; i++) await sleep(10);
    expect(releases.map(([transport, reason]) => [transport, reason])).toEqual([['sse', 'client']]);
  });

  it('closes the connection of a stream request the door refused, after its JSON answer', async () => {
    const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET /api/prices/stream?pairs=NOPE HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\nConnection: close\r\n\r\n\{"statusCode":400,"code":"INVALID_PAIR"/);
  });

  it('answers 414 URI_TOO_LONG for a request target over 8 KiB', async () => {
    const res = await getJson(`${t.url}/api/prices/stream?pad=${'x'.repeat(9000)}`);
    expect(res).toMatchObject({ status: 414, body: { statusCode: 414, code: 'URI_TOO_LONG' } });
  });

  it('takes no lease and no subscription for a refused request', async () => {
    const registry = t.app.get(ConnectionRegistry);
    const before = { leases: registry.counts().total, observers: t.hub.memberships() };
    expect((await getJson(`${t.url}/api/prices/stream?since=nope`)).status).toBe(400);
    expect((await getJson(`${t.url}/api/prices/stream?pad=${'x'.repeat(9000)}`)).status).toBe(414);
    expect({ leases: registry.counts().total, observers: t.hub.memberships() }).toEqual(before);
  });
});

describe('SSE connection limits', () => {
  it('answers 429 TOO_MANY_CONNECTIONS past the per-address and total limits, and frees slots on disconnect', async () => {
    const t = await startApp({ MAX_STREAM_CONNECTIONS_PER_IP: '2', MAX_STREAM_CONNECTIONS: '3' });
    const streams: RawStream[] = [];
    try {
      streams.push(await openStream(`${t.url}/api/prices/stream`), await openStream(`${t.url}/api/prices/stream`));
      // X-Forwarded-For is not trusted without TRUST_PROXY: still the same address.
      expect(await getJson(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '203.0.113.7' })).toEqual({
        status: 429,
        contentType: expect.stringMatching(/^application\/json/),
        body: { statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: expect.any(String) },
      });
      streams[0].close();
      await streams[0].ended;
      const registry = t.app.get(ConnectionRegistry);
      for (let i = 0; i < 100 && registry.counts().total !== 1; i++) await sleep(10);
      streams.push(await openStream(`${t.url}/stream`));
      expect(streams[2].status).toBe(200);
      expect(registry.counts()).toMatchObject({ total: 2, sse: 2 });
    } finally {
      for (const s of streams) s.close();
      await t.close();
    }
  });

  it('frees the slot of a client that ends its side of the connection, and closes the connection; bytes it sent after its request change nothing', async () => {
    const t = await startApp({ PAIRS: 'BTC-USD', SSE_RETRY_MS: '1234' });
    const served: (Socket & { parser?: unknown })[] = [];
    (t.app.getHttpServer() as Server).on('connection', (s: Socket) => served.push(s));
    const socket = connect(Number(new URL(t.url).port), '127.0.0.1');
    try {
      const registry = t.app.get(ConnectionRegistry);
      socket.on('error', () => undefined);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\nHost: x\r\n\r\n');
      for (let i = 0; i < 200 && !text.includes('retry:'); i++) await sleep(10);
      expect(text).toContain('retry: 1234');
      expect(registry.counts().total).toBe(1);
      // The stream's request was read off its connection by the stream door: Node's HTTP server
      // never gave it a parser (http/stream-door.ts).
      expect(served).toHaveLength(1);
      expect(served[0]!.parser).toBeUndefined();
      // A request after the stream's is read and dropped: the stream goes on, nothing else is answered.
      socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(50);
      const tick = (await t.publish('BTC-USD', 97123.5))!;
      for (let i = 0; i < 200 && !text.includes(tick.id); i++) await sleep(10);
      expect(text).toContain(`id: ${tick.id}`);
      expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
      socket.end();
      await closed;
      for (let i = 0; i < 200 && registry.counts().total !== 0; i++) await sleep(10);
      expect(registry.counts().total).toBe(0);
    } finally {
      socket.destroy();
      await t.close();
    }
  });

  it('counts X-Forwarded-For addresses apart when TRUST_PROXY is set, within the total limit', async () => {
    const t = await startApp({ MAX_STREAM_CONNECTIONS_PER_IP: '1', MAX_STREAM_CONNECTIONS: '2', TRUST_PROXY: '1' });
    const streams: RawStream[] = [];
    try {
      streams.push(await openStream(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '203.0.113.1' }));
      expect((await getJson(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '10.0.0.1, 203.0.113.1' })).body).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
      streams.push(await openStream(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '10.0.0.1, 203.0.113.2' }));
      expect(streams.map((s) => s.status)).toEqual([200, 200]);
      const third = await getJson(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '203.0.113.3' });
      expect(third).toMatchObject({ status: 429, body: { code: 'TOO_MANY_CONNECTIONS' } });
    } finally {
      for (const s of streams) s.close();
      await t.close();
    }
  });
});

describe('SSE while shutting down', () => {
  it('answers 503 SHUTTING_DOWN to new streams', async () => {
    const t = await startApp();
    try {
      t.app.get(LifecycleService).beginShutdown('test');
      expect(await getJson(`${t.url}/api/prices/stream`)).toMatchObject({ status: 503, body: { statusCode: 503, code: 'SHUTTING_DOWN' } });
      expect(await getJson(`${t.url}/stream`)).toMatchObject({ status: 503, body: { code: 'SHUTTING_DOWN' } });
    } finally {
      await t.close();
    }
  });

  it('ends open streams with a reconnect hint when the app closes: its own delay, 250 ms plus up to SHUTDOWN_RETRY_SPREAD_MS, not SSE_RETRY_MS', async () => {
    const t = await startApp({ SSE_RETRY_MS: '777', SHUTDOWN_RETRY_SPREAD_MS: '400' });
    const s = await openStream(`${t.url}/api/prices/stream`);
    await s.until(() => s.text().startsWith('retry: 777'));
    await t.close();
    await s.ended;
    const hint = /: server shutting down, reconnect\nretry: (\d+)\n\n$/.exec(s.text());
    expect(hint).not.toBeNull();
    expect(Number(hint![1])).toBeGreaterThanOrEqual(250);
    expect(Number(hint![1])).toBeLessThanOrEqual(650);
  });
});
