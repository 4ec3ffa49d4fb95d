import WebSocket from 'ws';
import { LEGACY_WS_PATH, WS_PATH, type WsMessage } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { until } from './support/sockets';
import { openStream } from './support/sse';

const ADMIN_TOKEN = 'dropin-admin-token-0123456789';

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A ws client on any path, recording messages. */
function ws(port: number, pathAndQuery: string): { messages: Record<string, unknown>[]; open: Promise<void>; close(): void } {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${pathAndQuery}`);
  const messages: Record<string, unknown>[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Record<string, unknown>));
  socket.on('error', () => undefined);
  return { messages, open: new Promise((resolve, reject) => (socket.once('open', () => resolve()), socket.once('error', reject))), close: () => socket.close() };
}

describe('BTC LTP Service drop-in routes', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ ADMIN_TOKEN });
  });
  afterAll(() => t.close());

  it('answers /health healthy and /ready 503 unhealthy before prices, 200 ready after', async () => {
    const health = await get(`${t.url}/health`);
    expect(health).toMatchObject({ status: 200, body: { status: 'healthy', timestamp: expect.any(String), services: expect.any(Object) } });
    expect(Number.isNaN(Date.parse(String(health.body.timestamp)))).toBe(false);
    expect(await get(`${t.url}/ready`)).toMatchObject({ status: 503, body: { status: 'unhealthy', timestamp: expect.any(String), services: { prices: 'down', lifecycle: 'up' } } });
    await t.publish('BTC-USD', 64_000.5);
    await t.publish('ETH-USD', 3_100.25);
    expect(await get(`${t.url}/ready`)).toMatchObject({ status: 200, body: { status: 'ready', timestamp: expect.any(String), services: { prices: 'up', lifecycle: 'up', sources: 'up' } } });
  });

  it('serves /api/v1/ltp/cached as {ltp:[{pair:"BTC/USD", amount}]}', async () => {
    await t.publish('BTC-USD', 64_001.5);
    await t.publish('ETH-USD', 3_101.25);
    expect(await get(`${t.url}/api/v1/ltp/cached`)).toEqual({
      status: 200,
      body: { ltp: [{ pair: 'BTC/USD', amount: 64_001.5 }, { pair: 'ETH/USD', amount: 3_101.25 }] },
    });
  });

  it('puts error next to code and message in the 206 error items', async () => {
    const partial = await get(`${t.url}/api/v1/ltp?pair=BTC/USD,LTC/USD`);
    expect(partial.status).toBe(206);
    expect(partial.body.errors).toEqual([{ pair: 'LTC/USD', code: 'UNSUPPORTED_PAIR', message: expect.any(String), error: expect.stringContaining('LTC-USD') }]);
  });

  it('refreshes by POST /api/v1/ltp/refresh?pairs= behind ADMIN_TOKEN: 401 without it, {message, pairs} with it', async () => {
    expect(await get(`${t.url}/api/v1/ltp/refresh?pairs=BTC/USD,ETH/USD`, { method: 'POST' })).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
    const ok = await get(`${t.url}/api/v1/ltp/refresh?pairs=BTC/USD,ETH/USD`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok).toMatchObject({ status: 200, body: { message: expect.any(String), pairs: ['BTC/USD', 'ETH/USD'] } });
    expect(await get(`${t.url}/api/v1/ltp/refresh?pairs=DOGE/USD`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).toMatchObject({ status: 400, body: { code: 'UNSUPPORTED_PAIR' } });
  });

  it('has no refresh route without ADMIN_TOKEN (404)', async () => {
    const open = await startApp();
    try {
      expect(await get(`${open.url}/api/v1/ltp/refresh`, { method: 'POST' })).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    } finally {
      await open.close();
    }
  });
});

describe('Bitcoin Price Streamer drop-in shapes', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
    await t.publish('BTC-USD', 70_000);
    await t.publish('ETH-USD', 3_500);
  });
  afterAll(() => t.close());

  it('streams BTC-USD only on /api/price/stream and /stream, each event with timestamp, price, symbol BTC and name Bitcoin', async () => {
    for (const path of ['/api/price/stream', '/stream']) {
      const s = await openStream(`${t.url}${path}`);
      try {
        const eth = await t.publish('ETH-USD', 3_500 + Math.random());
        const btc = (await t.publish('BTC-USD', 70_000 + Math.random()))!;
        await s.until((x) => x.ticks().some((tick) => tick.id === btc.id));
        const ticks = s.ticks() as unknown as Record<string, unknown>[];
        expect(ticks.some((tick) => tick.id === eth!.id)).toBe(false);
        for (const tick of ticks) expect(tick).toMatchObject({ timestamp: expect.any(String), price: expect.any(Number), symbol: 'BTC', name: 'Bitcoin', pair: 'BTC-USD' });
      } finally {
        s.close();
      }
    }
  });

  it('gives /api/ws without a query the legacy shape for BTC-USD only; with our parameters, and on /api/prices/ws, our feed', async () => {
    expect([WS_PATH, LEGACY_WS_PATH]).toEqual(['/api/prices/ws', '/api/ws']);
    const legacy = ws(t.port, '/api/ws');
    const ours = ws(t.port, '/api/ws?pairs=ETH-USD');
    const feed = ws(t.port, '/api/prices/ws');
    try {
      await Promise.all([legacy.open, ours.open, feed.open]);
      const eth = (await t.publish('ETH-USD', 3_600))!;
      const btc = (await t.publish('BTC-USD', 71_000))!;
      await until(() => legacy.messages.some((m) => m.id === btc.id) && ours.messages.some((m) => m.id === eth.id) && feed.messages.filter((m) => m.id === eth.id || m.id === btc.id).length === 2, 'the ticks');
      expect(legacy.messages.some((m) => m.pair === 'ETH-USD')).toBe(false);
      for (const m of legacy.messages) expect(m).toMatchObject({ type: 'price', timestamp: expect.any(String), price: expect.any(Number), symbol: 'BTC', name: 'Bitcoin' });
      for (const m of [...ours.messages, ...feed.messages] as WsMessage[]) expect(m).not.toHaveProperty('symbol');
      expect(ours.messages.every((m) => m.pair === 'ETH-USD')).toBe(true);
    } finally {
      legacy.close();
      ours.close();
      feed.close();
    }
  });
});
