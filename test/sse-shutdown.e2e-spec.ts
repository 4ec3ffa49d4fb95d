import http from 'http';
import net from 'net';
import { killStillRunning, spawnMain } from './support/main-process';
import { deletePrefix, freePort, randomPrefix, REDIS_URL, testClient } from './support/redis';
import { connected, ioClient, wsClient, wsOpen } from './support/sockets';
import { openStream, sleep, waitFor, type RawStream } from './support/sse';
import { bearer, mint, TEST_SECRET } from './support/tokens';

const SHUTDOWN_TIMEOUT_MS = 5000;

/** Holds a stream open with a bare socket (cheap enough for a thousand), recording whether the server ended it. */
function bareStream(port: number): Promise<{ ended: Promise<void>; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('GET /api/prices/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    socket.setEncoding('utf8');
    let head = '';
    const onData = (chunk: string) => {
      head += chunk;
      if (head.includes('retry:')) {
        socket.off('data', onData);
        socket.on('data', () => undefined);
        resolve({ socket, ended: new Promise((done) => socket.on('close', () => done())) });
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

describe('SIGTERM with open streams', () => {
  afterEach(killStillRunning);

  it('ends every stream with a reconnect hint and exits 0 within SHUTDOWN_TIMEOUT_MS', async () => {
    const port = await freePort();
    const { proc, output, exited } = spawnMain({
      PORT: String(port),
      HOST: '127.0.0.1',
      PRICE_SOURCES: 'simulated',
      POLL_INTERVAL_MS: '200',
      SSE_RETRY_MS: '3000',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      MAX_STREAM_CONNECTIONS_PER_IP: '2000',
    });

    const live = () =>
      new Promise<boolean>((resolve) => {
        http.get(`http://127.0.0.1:${port}/health/live`, (res) => resolve(res.statusCode === 200)).on('error', () => resolve(false));
      });
    let up = false;
    for (let i = 0; i < 200 && !up; i++) up = await live().then((ok) => ok || sleep(50).then(() => false));
    expect(up).toBe(true);

    // A few streams read in full, and a thousand more held open on bare sockets.
    const readers: RawStream[] = [];
    for (let i = 0; i < 5; i++) readers.push(await openStream(`http://127.0.0.1:${port}/api/prices/stream`));
    const held: Awaited<ReturnType<typeof bareStream>>[] = [];
    for (let i = 0; i < 1000; i += 100) held.push(...(await Promise.all(Array.from({ length: 100 }, () => bareStream(port)))));

    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    const { code, at } = await exited;
    expect({ code, output: code === 0 ? '' : output() }).toEqual({ code: 0, output: '' });
    expect(at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);

    await Promise.all(readers.map((r) => r.ended));
    // Each its own hint, uniform in 0..SHUTDOWN_RETRY_SPREAD_MS (1000 by default).
    for (const r of readers) expect(Number(/: server shutting down, reconnect\nretry: (\d+)\n\n$/.exec(r.text())?.[1] ?? NaN)).toBeLessThanOrEqual(1250);
    await waitFor(() => held.every((h) => h.socket.destroyed), 2000);
    await Promise.all(held.map((h) => h.ended));
  }, 30_000);

  it('with Redis: gives back its leader lease and shared slots when the shutdown begins, and exits once every transport has its hint', async () => {
    const port = await freePort();
    const prefix = randomPrefix();
    const redis = testClient();
    const { proc, output, exited } = spawnMain({
      PORT: String(port),
      HOST: '127.0.0.1',
      PRICE_SOURCES: 'simulated',
      POLL_INTERVAL_MS: '200',
      REDIS_URL,
      REDIS_PREFIX: prefix,
      // Long enough that a lease or slot left behind would still be there after the exit.
      LEADER_TTL_MS: '30000',
      AUTH_JWT_SECRET: TEST_SECRET,
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      KRAKEN_WS_URL: 'off',
      COINBASE_WS_URL: 'off',
    });
    const url = `http://127.0.0.1:${port}`;
    let sio: ReturnType<typeof ioClient> | undefined;
    try {
      await waitFor(async () => (await redis.exists(`${prefix}:leader`)) === 1, 10_000, output);
      const client = ioClient(url, { reconnection: false });
      sio = client;
      const sse = await openStream(`${url}/api/prices/stream?pairs=BTC-USD`, bearer(await mint('alice')));
      await sse.until((st) => st.ticks().length >= 1);
      const ws = wsClient(port, 'pairs=BTC-USD');
      await wsOpen(ws);
      await connected(client.socket);
      await client.socket.emitWithAck('subscribe', { pairs: ['BTC-USD'] });
      const sioGone = new Promise<string>((resolve) => client.socket.once('disconnect', resolve));
      // alice's slot is counted in Redis, under this instance's liveness key.
      await waitFor(async () => (await redis.hlen(`${prefix}:subs:alice`)) === 1 && (await redis.keys(`${prefix}:instance:*`)).length === 1, 5000, output);

      proc.kill('SIGTERM');
      const { code } = await exited;
      expect({ code, output: code === 0 ? '' : output() }).toEqual({ code: 0, output: '' });

      await sse.ended;
      expect(sse.text()).toMatch(/: server shutting down, reconnect\nretry: \d+\n\n$/);
      expect(await ws.closed).toEqual({ code: 1012, reason: expect.stringMatching(/; retry=\d+$/) });
      expect(await sioGone).toBe('transport close');
      expect(client.got.notices).toContainEqual(expect.objectContaining({ code: 'SHUTTING_DOWN', retryMs: expect.any(Number) }));
      // Nothing of this instance's is left for the others to wait out.
      expect({
        leader: await redis.exists(`${prefix}:leader`),
        instances: await redis.keys(`${prefix}:instance:*`),
        aliceSlots: await redis.hlen(`${prefix}:subs:alice`),
      }).toEqual({ leader: 0, instances: [], aliceSlots: 0 });
    } finally {
      sio?.close();
      redis.disconnect();
      await deletePrefix(prefix);
    }
  }, 30_000);
});
