import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import WebSocket from 'ws';
import { connect, type PriceClient, type Tick, type Transport } from '../packages/client/src';
import { JWKS_COOLDOWN_MS } from '../src/auth/token-verifier';
import { TRANSPORTS, WS_CLOSE_TOKEN_EXPIRED, WS_PATH, type WsMessage } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { connected, ioClient } from './support/sockets';
import { openStream } from './support/sse';
import { mint, TEST_SECRET } from './support/tokens';
import { sleep, waitFor } from './support/wait';

/** The stream ends at exp plus the verifier's clock allowance (5 s). */
const ALLOWANCE_MS = 5_000;
const TIMING = { backoff: { baseMs: 50, maxMs: 200, jitter: 'equal' as const }, settleMs: 300, stableMs: 5_000 };
const platform = typeof globalThis.WebSocket === 'function' ? {} : { WebSocket };

describe('token expiry', () => {
  let t: TestApp;
  const clients: PriceClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await t?.close();
  });

  it('ends a stream whose token expires with TOKEN_EXPIRED and the reconnect hint, on every transport, and never one that refreshed in time', async () => {
    t = await startApp({ AUTH_JWT_SECRET: TEST_SECRET, AUTH_REQUIRED: 'streams', SSE_RETRY_MS: '1234' });
    const releases = t.recordDisconnects();
    await t.publishAll('BTC-USD', [100]);
    const token = await mint('alice', {}, 1);
    const sse = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`, { Authorization: `Bearer ${token}` });
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}${WS_PATH}?pairs=BTC-USD`, ['price-stream', `bearer.${token}`]);
    const wsMessages: WsMessage[] = [];
    ws.on('message', (d) => wsMessages.push(JSON.parse(String(d)) as WsMessage));
    const wsClosed = new Promise<[number, string]>((resolve) => ws.on('close', (code, reason) => resolve([code, String(reason)])));
    const io = ioClient(t.url, { auth: { pairs: ['BTC-USD'], token }, reconnection: false });
    const kept = ioClient(t.url, { auth: { pairs: ['BTC-USD'], token }, reconnection: false });
    await Promise.all([connected(io.socket), connected(kept.socket)]);
    expect(await kept.socket.emitWithAck('refresh', { token: await mint('alice', {}, 600) })).toMatchObject({ ok: true });
    const ioGone = new Promise<string>((resolve) => io.socket.on('disconnect', resolve));
    const started = Date.now();
    await sse.ended;
    expect(Date.now() - started).toBeLessThan(1000 + ALLOWANCE_MS + 1500);
    expect(sse.frames().slice(-2)).toEqual([
      { event: 'notice', data: JSON.stringify({ code: 'TOKEN_EXPIRED', message: 'the token has expired; reconnect with a new one and resume' }) },
      { retry: '1234' },
    ]);
    expect(await wsClosed).toEqual([WS_CLOSE_TOKEN_EXPIRED, 'TOKEN_EXPIRED']);
    expect(wsMessages.at(-1)).toMatchObject({ type: 'error', code: 'TOKEN_EXPIRED' });
    expect(await ioGone).toBe('transport close');
    expect(io.got.notices).toEqual([expect.objectContaining({ code: 'TOKEN_EXPIRED' })]);
    await waitFor(() => releases.filter(([, reason]) => reason === 'expired').length === 3);
    expect(releases.filter(([, reason]) => reason === 'expired').map(([tr]) => tr).sort()).toEqual([...TRANSPORTS].sort());
    expect(kept.socket.connected).toBe(true);
    kept.close();
    io.close();
  }, 20_000);

  it('the client library: getToken on every (re)connection, resuming from the last id with no gap; Socket.IO refreshes before expiry instead', async () => {
    t = await startApp({ AUTH_JWT_SECRET: TEST_SECRET, AUTH_REQUIRED: 'streams' });
    const releases = t.recordDisconnects();
    await t.publishAll('BTC-USD', [100]);
    const asked: Record<Transport, number> = { sse: 0, websocket: 0, socketio: 0 };
    const got: Record<Transport, Tick[]> = { sse: [], websocket: [], socketio: [] };
    const expired: Record<Transport, number> = { sse: 0, websocket: 0, socketio: 0 };
    for (const transport of TRANSPORTS) {
      const client = connect({
        baseUrl: t.url,
        transport,
        pairs: ['BTC-USD'],
        timing: TIMING,
        ...platform,
        // Tokens of 1 s: each stream ends ~6 s later (exp and the clock allowance) unless refreshed.
        getToken: async () => {
          asked[transport]++;
          return mint(`app-${transport}`, {}, 1);
        },
      });
      client.on('price', (tick) => got[transport].push(tick));
      client.on('status', (s) => {
        if (s.state === 'reconnecting') expired[transport]++;
      });
      clients.push(client);
    }
    await waitFor(() => TRANSPORTS.every((tr) => got[tr].length === 1));
    const published: Tick[] = [];
    let price = 100;
    const until = Date.now() + 1000 + ALLOWANCE_MS + 2500;
    while (Date.now() < until) {
      published.push(...(await t.publishAll('BTC-USD', [++price])));
      await sleep(100);
    }
    await waitFor(() => TRANSPORTS.every((tr) => got[tr].at(-1)?.id === published.at(-1)!.id), 5000);
    for (const tr of TRANSPORTS) {
      // Every tick once, in order: nothing missed across the reconnection.
      expect({ tr, ids: got[tr].slice(1).map((k) => k.id) }).toEqual({ tr, ids: published.map((k) => k.id) });
    }
    // SSE and WebSocket came back with a new token; Socket.IO kept its stream open with refresh.
    expect(expired.sse).toBeGreaterThanOrEqual(1);
    expect(expired.websocket).toBeGreaterThanOrEqual(1);
    expect(asked.sse).toBeGreaterThanOrEqual(2);
    expect(asked.websocket).toBeGreaterThanOrEqual(2);
    // The server ended no Socket.IO stream for its token (a reconnect for any other reason, e.g. a
    // slow handshake on a loaded machine, is not what this checks), and ended the others' so.
    const expiredBy = (tr: string) => releases.filter(([transport, reason]) => transport === tr && reason === 'expired').length;
    expect(expiredBy('socketio')).toBe(0);
    expect(expiredBy('sse')).toBeGreaterThanOrEqual(1);
    expect(expiredBy('websocket')).toBeGreaterThanOrEqual(1);
    expect(asked.socketio).toBeGreaterThanOrEqual(2);
  }, 30_000);
});

describe('JWKS (AUTH_JWKS_URL) served by the test', () => {
  let t: TestApp;
  let server: Server;
  let keys: JWK[] = [];
  afterEach(async () => {
    await t?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('verifies RS256 and ES256 tokens, and a key rotated in during a stream: the open stream stays, a token of the new kid is accepted', async () => {
    server = createServer((_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const a = await generateKeyPair('RS256', { extractable: true });
    keys = [{ ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'RS256' }];
    t = await startApp({ AUTH_JWKS_URL: url, AUTH_REQUIRED: 'streams', AUTH_AUDIENCE: 'prices' });
    const sign = (alg: string, kid: string, key: Parameters<SignJWT['sign']>[0], aud = 'prices') =>
      new SignJWT({ aud }).setProtectedHeader({ alg, kid }).setSubject('partner-bot').setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(key);
    await t.publishAll('BTC-USD', [100]);
    const first = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`, { Authorization: `Bearer ${await sign('RS256', 'a', a.privateKey)}` });
    expect(first.status).toBe(200);
    const wrongAud = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`, { Authorization: `Bearer ${await sign('RS256', 'a', a.privateKey, 'other')}` });
    expect(wrongAud.status).toBe(401);
    // Rotation: the issuer publishes key b (ES256) and drops a.
    const b = await generateKeyPair('ES256', { extractable: true });
    keys = [{ ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'ES256' }];
    await sleep(JWKS_COOLDOWN_MS + 100);
    const second = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`, { Authorization: `Bearer ${await sign('ES256', 'b', b.privateKey)}` });
    expect(second.status).toBe(200);
    const [tick] = await t.publishAll('BTC-USD', [101]);
    for (const s of [first, second]) await s.until((x) => x.ticks().some((k) => k.id === tick.id));
    first.close();
    second.close();
  }, 20_000);
});
