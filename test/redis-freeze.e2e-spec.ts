import { idAfter } from '../src/domain/tick-id';
import { LeaderElection } from '../src/redis/leader-election.service';
import { startApp, type TestApp } from './support/app';
import { FakeUpstream } from './support/fake-upstream';
import { RedisProcess, testClient } from './support/redis';
import { getJson, openStream, sleep, waitFor, type RawStream } from './support/sse';

const POLL_MS = 500;
const LEADER_TTL_MS = 3000;
const FREEZE_MS = 10_000;

const isLeader = (t: TestApp) => t.app.get(LeaderElection).isLeader;

/**
 * A Redis that stops answering without closing its connections (SIGSTOP: a stalled VM, a
 * swapping host, a long fork), then answers again. The test freezes a Redis it started itself.
 */
describe('Redis frozen, then answering again', () => {
  let server: RedisProcess;
  let fake: FakeUpstream;
  let mover: NodeJS.Timeout;
  const apps: TestApp[] = [];
  const streams: RawStream[] = [];

  beforeAll(async () => {
    server = await RedisProcess.start();
    fake = await FakeUpstream.start();
    let price = 90_000;
    mover = setInterval(() => fake.setPrice('BTC-USD', price++), 50);
  });
  afterAll(async () => {
    clearInterval(mover);
    for (const s of streams) s.close();
    for (const t of apps) await t.close();
    await fake.close();
    try {
      server.signal('SIGCONT');
    } catch {
      // not running
    }
    await server.kill();
  });

  it('publishes again within one poll of Redis answering, with no tick lost, and is not ready while it cannot publish', async () => {
    const env = {
      ...fake.env(),
      PRICE_SOURCES: 'kraken',
      PAIRS: 'BTC-USD',
      POLL_INTERVAL_MS: String(POLL_MS),
      LEADER_TTL_MS: String(LEADER_TTL_MS),
      REDIS_URL: server.url,
      REDIS_PREFIX: 'freeze',
    };
    for (let i = 0; i < 2; i++) apps.push(await startApp(env));
    await waitFor(() => apps.filter(isLeader).length === 1, 5000, () => 'no leader');
    const subs = await Promise.all(apps.map(async (t) => openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`)));
    streams.push(...subs);
    await waitFor(() => subs.every((s) => s.ticks().length >= 3), 5000);

    const ready = () => Promise.all(apps.map(async (t) => (await getJson(`${t.url}/health/ready`)).status));
    expect(await ready()).toEqual([200, 200]);

    server.signal('SIGSTOP');
    await sleep(FREEZE_MS);
    const lastBefore = subs[0].ticks().at(-1)!.id;
    server.signal('SIGCONT');
    const thawedAt = Date.now();

    // Readiness while the service is not publishing: sampled until ticks flow again.
    const readiness: { at: number; status: number[]; publishing: boolean }[] = [];
    const firstNew = (s: RawStream) => s.ticks().find((t) => Date.parse(t.timestamp) > thawedAt);
    let flowing = false;
    const sampler = (async () => {
      while (!flowing) {
        readiness.push({ at: Date.now() - thawedAt, status: await ready(), publishing: subs.every((s) => firstNew(s) !== undefined) });
        await sleep(100);
      }
    })();
    await waitFor(() => subs.every((s) => firstNew(s) !== undefined), 20_000, () => 'no new tick after the thaw');
    flowing = true;
    await sampler;
    const resumeMs = Math.max(...subs.map((s) => Date.parse(firstNew(s)!.timestamp))) - thawedAt;
    process.stdout.write(`first tick polled after the thaw: ${resumeMs} ms; readiness samples ${JSON.stringify(readiness.slice(0, 40))}\n`);
    // Within one poll of Redis answering again (plus the time to see the lease is free).
    expect(resumeMs).toBeLessThan(POLL_MS + 1500);

    await waitFor(() => apps.filter(isLeader).length === 1, 5000, () => 'no single leader after the thaw');
    // Not ready while nothing could be published, though the upstream answered all along.
    const stalledReady = readiness.filter((r) => !r.publishing && r.at > POLL_MS + 1500 && r.status.some((s) => s === 200));
    expect(stalledReady).toEqual([]);

    // No tick lost, none repeated: every subscriber has exactly what the stream holds after its first id.
    await sleep(3 * POLL_MS);
    const redis = testClient(server.url);
    try {
      for (const s of subs) {
        const ids = s.ticks().map((t) => t.id);
        const stored = (await redis.xrange('freeze:ticks', `(${ids[0]}`, '+')).map(([id]) => id);
        const got = ids.slice(1);
        expect(got.slice(0, stored.length)).toEqual(stored.slice(0, got.length));
        expect(got.filter((id) => idAfter(id, lastBefore)).length).toBeGreaterThan(0);
        expect(s.frames().some((f) => f.event === 'reset')).toBe(false);
      }
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
