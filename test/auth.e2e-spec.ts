import http from 'node:http';
import WebSocket from 'ws';
import { WS_PATH, type WsMessage } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { connected, connectError, ioClient } from './support/sockets';
import { getJson } from './support/sse';
import { bearer, mint, sseStreams, TEST_SECRET } from './support/tokens';
import { sleep, waitFor } from './support/wait';

const AUTH = { AUTH_JWT_SECRET: TEST_SECRET };

/** A WebSocket upgrade's outcome: open (with the selected subprotocol), or the refusal's status and code. */
function wsTry(port: number, query: string, protocols?: string[]): Promise<{ open: true; ws: WebSocket; protocol: string; messages: WsMessage[] } | { open: false; status: number; code: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}?${query}`, protocols);
  const messages: WsMessage[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as WsMessage));
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ open: true, ws, protocol: ws.protocol, messages }));
    ws.once('unexpected-response', (_req, res: http.IncomingMessage) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += String(c)));
      res.on('end', () => resolve({ open: false, status: res.statusCode ?? 0, code: (JSON.parse(text) as { code: string }).code }));
    });
  });
}

/** The status of a GET, whatever its body. */
function statusOf(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

describe('subscriber tokens (AUTH_*)', () => {
  let t: TestApp;
  const streams = sseStreams(() => t.url);
  const sse = streams.open;
  afterEach(async () => {
    streams.closeAll();
    await t?.close();
  });

  it('AUTH_REQUIRED=all: REST under /api/ needs a bearer token whose pairs grant what it reads; probes, /metrics and the docs never do', async () => {
    t = await startApp({ ...AUTH, AUTH_REQUIRED: 'all' });
    await t.publishAll('BTC-USD', [100]);
    await t.publishAll('ETH-USD', [10]);
    const all = await mint('alice');
    const btcOnly = await mint('bob', { pairs: ['BTC-USD'] });
    // The fast routes (edge router) and the controllers' (history, pairs) alike.
    for (const path of ['/api/prices/BTC-USD', '/api/prices?pairs=BTC-USD', '/api/prices/BTC-USD/history', '/api/pairs', '/api/price/current', '/api/v1/ltp?pair=BTC/USD']) {
      expect({ path, ...(await getJson(`${t.url}${path}`)) }).toMatchObject({ path, status: 401, body: { statusCode: 401, code: 'UNAUTHORIZED' } });
      expect({ path, status: (await getJson(`${t.url}${path}`, bearer(all))).status }).toEqual({ path, status: 200 });
    }
    expect((await getJson(`${t.url}/api/prices/BTC-USD`, bearer(btcOnly))).status).toBe(200);
    for (const path of ['/api/prices/ETH-USD', '/api/prices?pairs=BTC-USD,ETH-USD', '/api/prices/ETH-USD/history', '/api/pairs', '/api/prices']) {
      expect({ path, ...(await getJson(`${t.url}${path}`, bearer(btcOnly))) }).toMatchObject({ path, status: 403, body: { statusCode: 403, code: 'PAIR_NOT_ENTITLED' } });
    }
    expect(await getJson(`${t.url}/api/prices/BTC-USD`, bearer(await mint('carol', {}, -60)))).toMatchObject({ status: 401, body: { code: 'TOKEN_EXPIRED' } });
    expect(await getJson(`${t.url}/api/prices/BTC-USD`, bearer(await mint('mallory', {}, 600, 'another-secret-of-at-least-32-characters')))).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
    expect(await getJson(`${t.url}/api/prices/BTC-USD`, { Authorization: 'Basic YWxpY2U6cHc=' })).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
    for (const path of ['/health/live', '/metrics', '/docs-json']) expect({ path, status: await statusOf(`${t.url}${path}`) }).toEqual({ path, status: 200 });
    expect(await statusOf(`${t.url}/health/ready`)).not.toBe(401);
    // AUTH_REQUIRED=all covers streams too.
    expect((await sse('pairs=BTC-USD')).status).toBe(401);
  });

  it('WebSocket: the token query or the subprotocol bearer.<token> (the server selects price-stream, never the token); refusals before the upgrade', async () => {
    t = await startApp({ ...AUTH, AUTH_REQUIRED: 'streams' });
    const [tick] = await t.publishAll('BTC-USD', [100]);
    const token = await mint('alice', { pairs: ['BTC-USD'] });
    expect(await wsTry(t.port, 'pairs=BTC-USD')).toEqual({ open: false, status: 401, code: 'UNAUTHORIZED' });
    expect(await wsTry(t.port, `pairs=ETH-USD&token=${token}`)).toEqual({ open: false, status: 403, code: 'PAIR_NOT_ENTITLED' });
    expect(await wsTry(t.port, 'pairs=BTC-USD', ['price-stream', `bearer.${await mint('x', {}, -60)}`])).toEqual({ open: false, status: 401, code: 'TOKEN_EXPIRED' });
    const byQuery = await wsTry(t.port, `pairs=BTC-USD&token=${token}`);
    const byProtocol = await wsTry(t.port, 'pairs=BTC-USD', ['price-stream', `bearer.${token}`]);
    for (const c of [byQuery, byProtocol]) {
      if (!c.open) throw new Error(`refused: ${c.code}`);
      await waitFor(() => c.messages.some((m) => m.type === 'price' && m.id === tick.id));
    }
    expect(byProtocol.open && byProtocol.protocol).toBe('price-stream');
    // A subscribe message beyond the token's pairs is refused like any bad subscribe.
    if (!byQuery.open) throw new Error('refused');
    byQuery.ws.send(JSON.stringify({ type: 'subscribe', pairs: ['ETH-USD'] }));
    await waitFor(() => byQuery.messages.some((m) => m.type === 'error' && m.code === 'PAIR_NOT_ENTITLED'));
    for (const c of [byQuery, byProtocol]) if (c.open) c.ws.terminate();
  });

  it('Socket.IO: auth.token; connect_error UNAUTHORIZED or PAIR_NOT_ENTITLED as for any refused handshake auth; refresh with a new token of the same sub', async () => {
    t = await startApp({ ...AUTH, AUTH_REQUIRED: 'streams' });
    const [tick] = await t.publishAll('BTC-USD', [100]);
    const token = await mint('alice', { pairs: ['BTC-USD'] });
    const anonymous = ioClient(t.url, { auth: { pairs: ['BTC-USD'] }, reconnection: false });
    expect((await connectError(anonymous.socket)).data).toMatchObject({ code: 'UNAUTHORIZED' });
    anonymous.close();
    const beyond = ioClient(t.url, { auth: { pairs: ['ETH-USD'], token }, reconnection: false });
    expect((await connectError(beyond.socket)).data).toMatchObject({ code: 'PAIR_NOT_ENTITLED' });
    beyond.close();
    const ok = ioClient(t.url, { auth: { pairs: ['BTC-USD'], token }, reconnection: false });
    await connected(ok.socket);
    await waitFor(() => ok.got.ticks.some((k) => k.id === tick.id));
    const denied = await ok.socket.emitWithAck('subscribe', { pairs: ['ETH-USD'] });
    expect(denied).toMatchObject({ ok: false, error: { code: 'PAIR_NOT_ENTITLED' } });
    const refreshed = await ok.socket.emitWithAck('refresh', { token: await mint('alice', { pairs: ['BTC-USD'] }, 1200) });
    expect(refreshed).toMatchObject({ ok: true });
    expect(await ok.socket.emitWithAck('refresh', { token: await mint('bob', {}, 1200) })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    expect(await ok.socket.emitWithAck('refresh', { token: await mint('alice', { pairs: ['ETH-USD'] }, 1200) })).toMatchObject({ ok: false, error: { code: 'PAIR_NOT_ENTITLED' } });
    expect(ok.socket.connected).toBe(true);
    ok.close();
  });

  it('caps connections per sub (its maxConnections) across transports, not per address; another sub and anonymous streams keep their own caps', async () => {
    t = await startApp({ ...AUTH, MAX_STREAM_CONNECTIONS_PER_IP: '3' });
    await t.publishAll('BTC-USD', [100]);
    const capped = await mint('bot', { maxConnections: 2 });
    expect((await sse('pairs=BTC-USD', bearer(capped))).status).toBe(200);
    const ws = await wsTry(t.port, `pairs=BTC-USD&token=${capped}`);
    expect(ws.open).toBe(true);
    const third = await sse('pairs=BTC-USD', bearer(await mint('bot', { maxConnections: 2 })));
    expect(third.status).toBe(429);
    await third.ended;
    expect(JSON.parse(third.text())).toMatchObject({ code: 'TOO_MANY_CONNECTIONS', message: 'at most 2 streams per subscriber' });
    const io = ioClient(t.url, { auth: { pairs: ['BTC-USD'], token: capped }, reconnection: false });
    expect((await connectError(io.socket)).data).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    io.close();
    // Without maxConnections a sub gets MAX_STREAM_CONNECTIONS_PER_IP of its own; from the same address as the others.
    const other = await mint('other');
    for (let i = 0; i < 3; i++) expect((await sse('pairs=BTC-USD', bearer(other))).status).toBe(200);
    expect((await sse('pairs=BTC-USD', bearer(other))).status).toBe(429);
    // AUTH_REQUIRED=off: an anonymous stream still opens, counted per address.
    expect((await sse('pairs=BTC-USD')).status).toBe(200);
    if (ws.open) ws.ws.terminate();
    // A slot given back is free again for the sub.
    await waitFor(async () => (await sse('pairs=BTC-USD', bearer(capped))).status === 200);
  });

  it('a minimum conflate in the token: a subscriber cannot ask for a faster rate', async () => {
    t = await startApp({ ...AUTH });
    await t.publishAll('BTC-USD', [100]);
    const slow = await mint('delayed', { conflate: 400 });
    const s = await sse('pairs=BTC-USD&conflate=10', bearer(slow));
    const plain = await sse('pairs=BTC-USD');
    await s.until((x) => x.ticks().length === 1);
    const burst = await t.publishAll('BTC-USD', [101, 102, 103, 104]);
    await plain.until((x) => x.ticks().length === 5);
    await sleep(100);
    expect(s.ticks().length).toBe(1);
    await s.until((x) => x.ticks().length === 2, 2000);
    expect(s.frames().filter((f) => f.event === 'price').map((f) => JSON.parse(f.data!) as { id: string; skipped?: number })[1]).toMatchObject({ id: burst[3].id, skipped: 3 });
  });

  it('exports open streams per tier, a bounded label (AUTH_TIERS, other, anonymous), never per sub', async () => {
    t = await startApp({ ...AUTH, AUTH_TIER_CLAIM: 'plan', AUTH_TIERS: 'free,pro' });
    await t.publishAll('BTC-USD', [100]);
    await sse('pairs=BTC-USD', bearer(await mint('u1', { plan: 'pro' })));
    await sse('pairs=BTC-USD', bearer(await mint('u2', { plan: 'pro' })));
    await sse('pairs=BTC-USD', bearer(await mint('u3', { plan: 'user-chosen-value' })));
    await sse('pairs=BTC-USD');
    const metrics = await new Promise<string>((resolve) => http.get(`${t.url}/metrics`, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += String(c)));
      res.on('end', () => resolve(text));
    }));
    expect(metrics).toContain('price_stream_tier_subscribers{tier="pro"} 2');
    expect(metrics).toContain('price_stream_tier_subscribers{tier="other"} 1');
    expect(metrics).toContain('price_stream_tier_subscribers{tier="anonymous"} 1');
    expect(metrics).not.toMatch(/u1|u2|u3|user-chosen-value/);
  });
});
