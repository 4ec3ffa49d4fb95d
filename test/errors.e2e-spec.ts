import { startApp, type TestApp } from './support/app';
import { deletePrefix, randomPrefix } from './support/redis';
import { connected, ioClient, until, wsClient, wsOpen, wsRefusal } from './support/sockets';
import { getJson, openStream, waitFor } from './support/sse';

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

describe('error bodies say nothing internal', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ RATE_LIMIT_PER_MINUTE: '3', ADMIN_TOKEN });
  });
  afterAll(() => t.close());

  it('answers a malformed JSON body 400 INVALID_JSON in our words', async () => {
    const res = await fetch(`${t.url}/api/admin/refresh`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` }, body: '{x' });
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(JSON.parse(text)).toEqual({ statusCode: 400, code: 'INVALID_JSON', message: 'the request body is not valid JSON' });
    expect(text).not.toMatch(/position|Expected|SyntaxError/);
  });

  it('answers a malformed percent-encoding in the path 400 INVALID_ENCODING without echoing it', async () => {
    for (const path of ['/api/prices/%E0%A4%A', '/api/prices/%E0%A4%A/history']) {
      const res = await fetch(`${t.url}${path}`);
      const text = await res.text();
      expect(res.status).toBe(400);
      expect(JSON.parse(text)).toEqual({ statusCode: 400, code: 'INVALID_ENCODING', message: 'the request path holds a malformed percent-encoding' });
      expect(text).not.toMatch(/decode|%E0/);
    }
  });

  it('answers the rate limit 429 RATE_LIMITED without the exception class', async () => {
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) last = await fetch(`${t.url}/api/pairs`, { headers: { 'X-Forwarded-For': '203.0.113.99' } });
    const text = await last!.text();
    expect(last!.status).toBe(429);
    expect(JSON.parse(text)).toEqual({ statusCode: 429, code: 'RATE_LIMITED', message: 'too many requests; retry after the Retry-After delay' });
    expect(text).not.toContain('Exception');
  });

  it('answers an unknown route 404 NOT_FOUND without echoing the path', async () => {
    const res = await fetch(`${t.url}/api/nope-<script>`);
    expect(await res.json()).toEqual({ statusCode: 404, code: 'NOT_FOUND', message: 'no such route' });
  });
});

describe.each([
  ['in memory', () => ({})],
  // The instance that holds the lease polls (simulated) at once: after that, not for an hour.
  ['with Redis (ids from Redis\' clock)', () => ({ REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', REDIS_PREFIX: randomPrefix(), POLL_INTERVAL_MS: '3600000' })],
])('resume ids after the newest published one, %s', (_name, env) => {
  let t: TestApp;
  let prefix: string | undefined;
  let newest: string;
  let ahead: string;
  beforeAll(async () => {
    const e: Record<string, string> = env();
    t = await startApp(e);
    prefix = e.REDIS_PREFIX;
    if (prefix) {
      await waitFor(async () => {
        const { pairs } = (await (await fetch(`${t.url}/api/pairs`)).json()) as { pairs: { latest: unknown }[] };
        return pairs.every((p) => p.latest !== null);
      }, 5000);
    }
    await t.publish('BTC-USD', 100);
    newest = (await t.publish('ETH-USD', 200))!.id;
    // With Redis the instance learns of a tick when its tail delivers it (as its subscribers do).
    await waitFor(async () => ((await (await fetch(`${t.url}/api/prices/ETH-USD`)).json()) as { id?: string }).id === newest, 5000);
    const [ms, seq] = newest.split('-').map(Number);
    // One sequence step after the newest, and well inside the old 5 s clock allowance.
    ahead = `${ms}-${seq + 1}`;
  });
  afterAll(async () => {
    await t.close();
    if (prefix) await deletePrefix(prefix);
  });

  it('answers SSE 400 RESUME_POINT_IN_FUTURE for an id after the newest, by header and by parameter, and accepts the newest itself', async () => {
    expect(await getJson(`${t.url}/api/prices/stream`, { 'Last-Event-ID': ahead })).toMatchObject({ status: 400, body: { code: 'RESUME_POINT_IN_FUTURE' } });
    expect(await getJson(`${t.url}/api/prices/stream?lastEventId=${ahead}`)).toMatchObject({ status: 400, body: { code: 'RESUME_POINT_IN_FUTURE' } });
    expect(await getJson(`${t.url}/api/prices/stream?lastEventId=${Date.now() + 2000}-0`)).toMatchObject({ status: 400, body: { code: 'RESUME_POINT_IN_FUTURE' } });
    const ok = await openStream(`${t.url}/api/prices/stream?lastEventId=${newest}`);
    try {
      expect(ok.status).toBe(200);
      const next = (await t.publish('BTC-USD', 101))!;
      await ok.until((s) => s.ticks().some((tick) => tick.id === next.id));
      expect(ok.ticks().map((tick) => tick.id)).toEqual([next.id]);
    } finally {
      ok.close();
    }
  });

  it('keeps a clock-skew allowance for since', async () => {
    const s = await openStream(`${t.url}/api/prices/stream?since=${Date.now() + 2000}`);
    s.close();
    expect(s.status).toBe(200);
  });

  it('refuses it on WebSocket (before the upgrade, and in a subscribe message) and on Socket.IO', async () => {
    const latest = (await t.publish('ETH-USD', 201))!.id;
    await waitFor(async () => ((await (await fetch(`${t.url}/api/prices/ETH-USD`)).json()) as { id?: string }).id === latest, 5000);
    const [ms, seq] = latest.split('-').map(Number);
    const future = `${ms}-${seq + 1}`;
    expect(await wsRefusal(t.port, `lastEventId=${future}`)).toMatchObject({ status: 400, body: { code: 'RESUME_POINT_IN_FUTURE' } });
    const ws = wsClient(t.port, 'pairs=BTC-USD');
    await wsOpen(ws);
    ws.ws.send(JSON.stringify({ type: 'subscribe', pairs: ['ETH-USD'], lastEventId: future }));
    await until(() => ws.messages.some((m) => m.type === 'error'), 'an error message');
    expect(ws.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'RESUME_POINT_IN_FUTURE', request: 'subscribe' });
    ws.ws.close();
    const io = ioClient(t.url);
    try {
      await connected(io.socket);
      expect(await io.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'], lastEventId: future })).toMatchObject({ ok: false, error: { code: 'RESUME_POINT_IN_FUTURE' } });
      expect(await io.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'], lastEventId: latest })).toMatchObject({ ok: true, recovered: true });
    } finally {
      io.close();
    }
  });
});
