import http from 'http';
import { killStillRunning, spawnMain } from './support/main-process';
import { startApp } from './support/app';
import { freePort, randomPrefix, RedisProcess, testClient } from './support/redis';
import { getJson, openStream, sleep, waitFor, type RawStream } from './support/sse';
import { captureLogs } from './support/logs';

describe('readiness with a slow Redis', () => {
  it('answers 503 naming the redis check when Redis does not answer within the check timeout (DEBUG SLEEP), not 500', async () => {
    const server = await RedisProcess.start(['--enable-debug-command', 'local']);
    const lines: string[] = [];
    const { destination: sink } = captureLogs(lines);
    const t = await startApp({ REDIS_URL: server.url, REDIS_PREFIX: randomPrefix(), LOG_LEVEL: 'info' }, { logDestination: sink });
    const blocker = testClient(server.url);
    try {
      await t.publish('BTC-USD', 60_000);
      await t.publish('ETH-USD', 3_000);
      await waitFor(async () => (await getJson(`${t.url}/health/ready`)).status === 200, 5000);
      const sleeping = blocker.call('DEBUG', 'SLEEP', '3');
      await sleep(100);
      const started = Date.now();
      const ready = await getJson(`${t.url}/health/ready`);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(ready).toMatchObject({
        status: 503,
        body: { status: 'error', error: { redis: { status: 'down', message: expect.stringContaining('redis check took longer than 1000 ms') } } },
      });
      expect(JSON.stringify(ready.body)).not.toContain('INTERNAL_ERROR');
      await sleeping;
      expect(lines.filter((l) => l.includes('unhandled error'))).toEqual([]);
    } finally {
      blocker.disconnect();
      await t.close();
      await server.kill();
    }
  });
});

describe('SIGTERM with SHUTDOWN_DELAY_MS', () => {
  afterEach(killStillRunning);

  it('takes readiness down for the delay while REST, streams and probes keep serving, then ends streams with a reconnect hint and exits 0', async () => {
    const DELAY_MS = 1500;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const { proc, output, exited } = spawnMain({ PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '200', SSE_RETRY_MS: '3000', SHUTDOWN_DELAY_MS: String(DELAY_MS), SHUTDOWN_TIMEOUT_MS: '5000', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off' });
    const status = (p: string) =>
      new Promise<number>((resolve) => {
        http.get(`${base}${p}`, { agent: false }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', () => resolve(0));
      });
    await waitFor(async () => (await status('/health/ready')) === 200, 10_000, output);

    const before: RawStream = await openStream(`${base}/api/prices/stream`);
    await before.until((s) => s.ticks().length >= 1);
    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    await sleep(200);
    // The delay: not ready, everything else as before (a new stream too).
    expect(await status('/health/ready')).toBe(503);
    expect(await status('/health/live')).toBe(200);
    expect(await status('/api/pairs')).toBe(200);
    const during = await openStream(`${base}/api/prices/stream`);
    expect(during.status).toBe(200);
    const seen = before.ticks().length;
    await before.until((s) => s.ticks().length > seen, 1000);
    expect(before.text()).not.toContain('server shutting down');

    const { code, at } = await exited;
    expect({ code, output: code === 0 ? '' : output() }).toEqual({ code: 0, output: '' });
    expect(at - signalledAt).toBeGreaterThanOrEqual(DELAY_MS);
    expect(at - signalledAt).toBeLessThan(DELAY_MS + 5000);
    await Promise.all([before.ended, during.ended]);
    // Each its own hint, uniform in 250..250 + SHUTDOWN_RETRY_SPREAD_MS (1000 by default).
    for (const s of [before, during]) {
      const hint = Number(/: server shutting down, reconnect\nretry: (\d+)\n\n$/.exec(s.text())?.[1] ?? NaN);
      expect(hint).toBeGreaterThanOrEqual(250);
      expect(hint).toBeLessThanOrEqual(1250);
    }
  }, 30_000);
});
