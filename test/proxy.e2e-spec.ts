import { ConnectionRegistry } from '../src/stream/connection-registry';
import { startApp, type TestApp } from './support/app';
import { connectError, connected, ioClient, websocketHandshake, wsRefusal } from './support/sockets';
import { getJson, openStream, sleep, type RawStream } from './support/sse';
import { captureLogs } from './support/logs';

/** The header nginx sends with `proxy_add_x_forwarded_for`: what the client wrote, then the peer nginx saw. */
const nginxXff = (forged: string, peer: string) => `${forged}, ${peer}`;

describe('behind one proxy (TRUST_PROXY=1)', () => {
  let t: TestApp;
  const lines: string[] = [];
  beforeAll(async () => {
    const { destination: sink } = captureLogs(lines);
    t = await startApp({ TRUST_PROXY: '1', MAX_STREAM_CONNECTIONS_PER_IP: '8', RATE_LIMIT_PER_MINUTE: '3', LOG_LEVEL: 'info' }, { logDestination: sink });
  });
  afterAll(() => t.close());

  it('counts eight streams whose X-Forwarded-For only differs left of the proxy entry as one client', async () => {
    const streams: RawStream[] = [];
    try {
      for (let i = 1; i <= 8; i++) streams.push(await openStream(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': nginxXff(`10.77.0.${i}`, '192.0.2.20') }));
      expect(streams.map((s) => s.status)).toEqual(Array(8).fill(200));
      expect(t.app.get(ConnectionRegistry).counts()).toMatchObject({ total: 8, ips: 1 });
      // That client's ninth stream is refused on every transport, whatever it writes in front.
      expect(await getJson(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': nginxXff('10.77.0.9', '192.0.2.20') })).toMatchObject({ status: 429, body: { code: 'TOO_MANY_CONNECTIONS' } });
      expect(await wsRefusal(t.port, 'pairs=BTC-USD', { 'X-Forwarded-For': nginxXff('198.51.100.1', '192.0.2.20') })).toMatchObject({ status: 429, body: { code: 'TOO_MANY_CONNECTIONS' } });
      const handshake = await websocketHandshake(t.port, { 'X-Forwarded-For': nginxXff('198.51.100.2', '192.0.2.20') });
      expect({ status: handshake.status, body: JSON.parse(handshake.body) as unknown }).toMatchObject({ status: 429, body: { code: 'TOO_MANY_CONNECTIONS' } });
      const refused = ioClient(t.url, { extraHeaders: { 'X-Forwarded-For': nginxXff('198.51.100.2', '192.0.2.20') }, reconnection: false });
      try {
        await expect(connectError(refused.socket)).resolves.toBeInstanceOf(Error); // the handshake's 429, a transport error to socket.io-client
        expect(refused.socket.connected).toBe(false);
      } finally {
        refused.close();
      }
      // Another client behind the same proxy is not.
      const other = ioClient(t.url, { extraHeaders: { 'X-Forwarded-For': '192.0.2.21' } });
      try {
        await connected(other.socket);
        expect(t.app.get(ConnectionRegistry).counts()).toMatchObject({ total: 9, ips: 2 });
      } finally {
        other.close();
      }
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('rate-limits REST by the same address, and logs it', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const res = await fetch(`${t.url}/api/pairs`, { headers: { 'X-Forwarded-For': nginxXff(`10.88.0.${i}`, '192.0.2.30'), 'X-Request-Id': `proxy-${i}` } });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect((await fetch(`${t.url}/api/pairs`, { headers: { 'X-Forwarded-For': nginxXff('10.88.0.1', '192.0.2.31') } })).status).toBe(200);
    await sleep(50);
    const line = lines.map((l) => JSON.parse(l) as { requestId?: string; req?: { ip?: string } }).find((l) => l.requestId === 'proxy-1' && l.req);
    expect(line?.req?.ip).toBe('192.0.2.30');
  });

  it('rate-limits the fast routes ahead of Express by the same address, in the budget Express spends', async () => {
    const ltp = async (path: string, left: string, right: string) => (await fetch(`${t.url}${path}?pair=BTC/USD`, { headers: { 'X-Forwarded-For': nginxXff(left, right) } })).status;
    // Two answers ahead of Express, one through it (a trailing slash), from one client behind the proxy.
    const statuses = [await ltp('/api/v1/ltp', '10.89.0.1', '192.0.2.50'), await ltp('/api/v1/ltp/', '10.89.0.2', '192.0.2.50'), await ltp('/api/v1/ltp', '10.89.0.3', '192.0.2.50')];
    expect(statuses.every((s) => s === 200 || s === 206)).toBe(true);
    expect(await ltp('/api/v1/ltp', '10.89.0.4', '192.0.2.50')).toBe(429);
    expect([206, 200]).toContain(await ltp('/api/v1/ltp', '10.89.0.4', '192.0.2.51'));
  });
});

describe('behind trusted proxy addresses (TRUST_PROXY=<CIDR list>)', () => {
  it('takes the right-most untrusted entry: trusted hops are skipped, anything left of the client is ignored', async () => {
    // The test connects from 127.0.0.1 (trusted); 10.1.2.3 is a second, trusted proxy hop.
    const t = await startApp({ TRUST_PROXY: '127.0.0.0/8, 10.1.2.0/24', MAX_STREAM_CONNECTIONS_PER_IP: '1' });
    const streams: RawStream[] = [];
    try {
      streams.push(await openStream(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '203.0.113.5, 192.0.2.40, 10.1.2.3' }));
      expect(streams[0].status).toBe(200);
      expect(await getJson(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '198.51.100.7, 192.0.2.40, 10.1.2.3' })).toMatchObject({ status: 429 });
      streams.push(await openStream(`${t.url}/api/prices/stream`, { 'X-Forwarded-For': '192.0.2.40, 10.9.9.9, 10.1.2.3' }));
      expect(streams[1].status).toBe(200);
      expect(t.app.get(ConnectionRegistry).counts()).toMatchObject({ total: 2, ips: 2 });
    } finally {
      for (const s of streams) s.close();
      await t.close();
    }
  });
});

describe('TRUST_PROXY at start-up', () => {
  it.each([['true'], ['10.0.0.0/33'], ['proxy.example']])('refuses %s, naming the variable', async (value) => {
    await expect(startApp({ TRUST_PROXY: value })).rejects.toThrow(/TRUST_PROXY=/);
  });
});
