import net from 'node:net';
import { startApp, type TestApp } from './support/app';
import { connected, ioClient, wsClient, wsOpen } from './support/sockets';

/** One raw HTTP/1.1 exchange with the upgrade offer `curl --http2` makes over http://; resolves to what came back until the server closed. */
function h2cRequest(port: number, method: string, path: string, { waitFor, body }: { waitFor?: string; body?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (waitFor !== undefined && text.includes(waitFor)) socket.destroy();
    });
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', reject);
    const extra = body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n${extra}\r\n${body ?? ''}`);
  });
}

const status = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const bodyOf = (text: string) => text.slice(text.indexOf('\r\n\r\n') + 4);

describe('Upgrade: h2c on ordinary routes', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
    await t.publish('BTC-USD', 50_000);
  });
  afterAll(() => t.close());

  it('gets the normal answer from REST routes, the probes and the metrics', async () => {
    const pairs = await h2cRequest(t.port, 'GET', '/api/prices/BTC-USD');
    expect(status(pairs)).toBe(200);
    expect(JSON.parse(bodyOf(pairs).replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, ''))).toMatchObject({ pair: 'BTC-USD', price: 50_000 });
    expect(status(await h2cRequest(t.port, 'GET', '/health/live'))).toBe(200);
    expect(status(await h2cRequest(t.port, 'GET', '/health/ready'))).toBe(200);
    expect(status(await h2cRequest(t.port, 'GET', '/metrics'))).toBe(200);
    expect(status(await h2cRequest(t.port, 'GET', '/api/prices/DOGE-USD'))).toBe(404);
    expect(status(await h2cRequest(t.port, 'HEAD', '/api/pairs'))).toBe(200);
  });

  it('opens an SSE stream', async () => {
    const text = await h2cRequest(t.port, 'GET', '/api/prices/stream?pairs=BTC-USD', { waitFor: '"price":50000' });
    expect(status(text)).toBe(200);
    expect(text).toMatch(/content-type: text\/event-stream/i);
    expect(text).toContain('event: price');
  });

  it('still upgrades the WebSocket feed and Socket.IO', async () => {
    const ws = wsClient(t.port, 'pairs=BTC-USD');
    await wsOpen(ws);
    ws.ws.close();
    const io = ioClient(t.url);
    try {
      await connected(io.socket);
    } finally {
      io.close();
    }
  });
});
