import { idAfter } from '../src/domain/tick-id';
import { PricePollerService } from '../src/ingest/price-poller.service';
import { LeaderElection } from '../src/redis/leader-election.service';
import { RedisClients } from '../src/redis/redis.clients';
import { startApp, type TestApp } from './support/app';
import { FakeUpstream } from './support/fake-upstream';
import { deletePrefix, randomPrefix, REDIS_URL, RedisProcess, testClient } from './support/redis';
import { getJson, openStream, sleep, waitFor, type RawStream } from './support/sse';

const POLL_MS = 200;
const LEADER_TTL_MS = 1500;

/** Moves BTC-USD on the fake upstream every 50 ms, so that every poll makes a tick. */
function priceMover(fake: FakeUpstream) {
  let price = 90_000;
  let timer: NodeJS.Timeout | null = null;
  const start = () => (timer ??= setInterval(() => fake.setPrice('BTC-USD', price++), 50));
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = null;
  };
  start();
  return { start, stop };
}

const isLeader = (t: TestApp) => t.app.get(LeaderElection).isLeader;

function expectStrictlyIncreasing(ids: string[]): void {
  for (let i = 1; i < ids.length; i++) {
    if (!idAfter(ids[i], ids[i - 1])) throw new Error(`id ${ids[i]} at ${i} does not follow ${ids[i - 1]}`);
  }
}

/** The BTC-USD ids in the shared stream after an id (exclusive), straight from Redis. */
async function streamIdsAfter(prefix: string, afterId: string, url = REDIS_URL): Promise<string[]> {
  const redis = testClient(url);
  try {
    const entries = await redis.xrange(`${prefix}:ticks`, `(${afterId}`, '+');
    return entries.filter(([, fields]) => fields[fields.indexOf('pair') + 1] === 'BTC-USD').map(([id]) => id);
  } finally {
    redis.disconnect();
  }
}

describe('Several instances through Redis', () => {
  let prefix: string;
  let fake: FakeUpstream;
  let mover: ReturnType<typeof priceMover>;
  const apps: TestApp[] = [];
  const streams: RawStream[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  const start = (env: Record<string, string> = {}) =>
    startApp({
      ...fake.env(),
      PRICE_SOURCES: 'kraken',
      PAIRS: 'BTC-USD,ETH-USD',
      POLL_INTERVAL_MS: String(POLL_MS),
      LEADER_TTL_MS: String(LEADER_TTL_MS),
      REDIS_URL,
      REDIS_PREFIX: prefix,
      SSE_RETRY_MS: '100',
      ...env,
    }).then((t) => (apps.push(t), t));
  const open = async (url: string, headers: Record<string, string> = {}) => {
    const s = await openStream(url, headers);
    streams.push(s);
    return s;
  };
  const ids = (s: RawStream) => s.ticks().map((t) => t.id);
  /** Both instances up, one of them leading: [leader, follower]. */
  const startTwo = async (env: Record<string, string> = {}): Promise<[TestApp, TestApp]> => {
    const a = await start(env);
    const b = await start(env);
    await waitFor(() => [a, b].filter(isLeader).length === 1, 5000, () => 'no leader');
    return isLeader(a) ? [a, b] : [b, a];
  };

  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));
  beforeEach(async () => {
    prefix = randomPrefix();
    fake = await FakeUpstream.start();
    mover = priceMover(fake);
  });
  afterEach(async () => {
    mover.stop();
    for (const s of streams.splice(0)) s.close();
    for (const t of apps.splice(0)) await t.close();
    await fake.close();
    await deletePrefix(prefix);
    expect(unhandled).toEqual([]);
  });

  it('polls the upstreams from one instance only', async () => {
    const [leader, follower] = await startTwo();
    expect(follower.app.get(PricePollerService).isEnabled).toBe(false);
    expect(leader.app.get(PricePollerService).isEnabled).toBe(true);
    fake.resetCounts();
    await sleep(2000);
    // One poller asks Kraken once per poll: about 2000/200 = 10 requests (two would make 20).
    const requests = fake.requestCount('kraken');
    expect(requests).toBeGreaterThanOrEqual(8);
    expect(requests).toBeLessThanOrEqual(12);
  });

  it('delivers the same ids in the same order to subscribers on both instances', async () => {
    const [leader, follower] = await startTwo();
    const onLeader = await open(`${leader.url}/api/prices/stream?pairs=BTC-USD`);
    const onFollower = await open(`${follower.url}/api/prices/stream?pairs=BTC-USD`);
    await waitFor(() => ids(onLeader).length >= 10 && ids(onFollower).length >= 10, 10_000);
    mover.stop();
    await sleep(3 * POLL_MS);
    const from = [ids(onLeader)[0], ids(onFollower)[0]].sort((x, y) => (idAfter(x, y) ? -1 : 1))[0];
    const common = (s: RawStream) => ids(s).filter((id) => !idAfter(from, id));
    expect(common(onFollower)).toEqual(common(onLeader));
    expectStrictlyIncreasing(ids(onLeader));
    // No gap: exactly what the shared stream holds.
    expect(common(onLeader).slice(1)).toEqual(await streamIdsAfter(prefix, from));
    // Each instance's tail reports how far behind the stream it reads (within ms here), and the
    // leader gauge adds up to one poller.
    const scrape = async (t: TestApp) => (await fetch(`${t.url}/metrics`)).text();
    const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    for (const t of [leader, follower]) {
      const lag = gauge(await scrape(t), 'price_stream_redis_tail_lag_seconds');
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(1);
    }
    expect(gauge(await scrape(leader), 'price_stream_leader') + gauge(await scrape(follower), 'price_stream_leader')).toBe(1);
  });

  it('resumes a subscriber cut off from one instance on the other with exactly the missed ids', async () => {
    const [a, b] = await startTwo();
    for (const [first, second] of [
      [a, b],
      [b, a],
    ]) {
      const before = await open(`${first.url}/api/prices/stream?pairs=BTC-USD`);
      await waitFor(() => ids(before).length >= 5, 5000);
      before.close();
      await before.ended;
      const lastSeen = ids(before).at(-1)!;
      await sleep(5 * POLL_MS); // ticks go on meanwhile
      const resumed = await open(`${second.url}/api/prices/stream?pairs=BTC-USD`, { 'Last-Event-ID': lastSeen });
      await waitFor(() => ids(resumed).length >= 8, 5000);
      mover.stop();
      await sleep(3 * POLL_MS);
      expect(resumed.frames().some((f) => f.event === 'reset')).toBe(false);
      expect(ids(resumed)).toEqual(await streamIdsAfter(prefix, lastSeen));
      resumed.close();
      mover.start();
    }
  });

  it('hands polling over within the lease when the leader stops, without a gap or a duplicate', async () => {
    const [leader, follower] = await startTwo();
    const sub = await open(`${follower.url}/api/prices/stream?pairs=BTC-USD`);
    await waitFor(() => ids(sub).length >= 5, 5000);
    const stoppedAt = Date.now();
    await leader.close();
    await waitFor(() => isLeader(follower), LEADER_TTL_MS, () => 'no takeover within LEADER_TTL_MS');
    const takeoverMs = Date.now() - stoppedAt;
    process.stdout.write(`takeover after a clean stop: ${takeoverMs} ms\n`);
    await waitFor(() => ids(sub).length >= 15, 5000);
    mover.stop();
    await sleep(3 * POLL_MS);
    const got = ids(sub);
    expectStrictlyIncreasing(got);
    expect(got.slice(1)).toEqual(await streamIdsAfter(prefix, got[0]));
    // The longest pause between ticks is the takeover, plus about one poll.
    const times = sub.ticks().map((t) => Date.parse(t.timestamp));
    const longest = Math.max(...times.slice(1).map((t, i) => t - times[i]));
    expect(longest).toBeLessThan(takeoverMs + 3 * POLL_MS);
  });

  it('does not publish an unchanged price again after a takeover (the new leader dedups from the stream)', async () => {
    const [leader, follower] = await startTwo();
    const sub = await open(`${follower.url}/api/prices/stream?pairs=BTC-USD,ETH-USD`);
    await waitFor(() => ids(sub).length >= 4, 5000);
    mover.stop();
    await sleep(3 * POLL_MS);
    const before = ids(sub).length;
    await leader.close();
    await waitFor(() => isLeader(follower), LEADER_TTL_MS);
    fake.resetCounts();
    await waitFor(() => fake.requestCount('kraken') >= 4, 3000);
    expect(ids(sub).length).toBe(before);
  });

  it('stops a leader cut off from Redis when its lease runs out, and the other takes over within LEADER_TTL_MS', async () => {
    const [leader, follower] = await startTwo();
    const clients = leader.app.get(RedisClients);
    const cutAt = Date.now();
    clients.command.disconnect();
    clients.tail.disconnect();
    await waitFor(() => !isLeader(leader), LEADER_TTL_MS + 100, () => 'the cut-off leader still polls');
    expect(leader.app.get(PricePollerService).isEnabled).toBe(false);
    const stoppedMs = Date.now() - cutAt;
    await waitFor(() => isLeader(follower), LEADER_TTL_MS + 300, () => 'no takeover');
    const takeoverMs = Date.now() - cutAt;
    process.stdout.write(`cut-off leader stopped after ${stoppedMs} ms; takeover after ${takeoverMs} ms\n`);
    expect(takeoverMs).toBeGreaterThanOrEqual(stoppedMs);
    const ready = await getJson(`${leader.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: { redis: { status: 'down' } } });
  });

  it('survives a Redis outage: not ready meanwhile, subscribers kept, tailing resumed, old resume points reset', async () => {
    const server = await RedisProcess.start();
    try {
      const [a, b] = await startTwo({ REDIS_URL: server.url });
      const subA = await open(`${a.url}/api/prices/stream?pairs=BTC-USD`);
      const subB = await open(`${b.url}/api/prices/stream?pairs=BTC-USD`);
      let ended = false;
      void Promise.race([subA.ended, subB.ended]).then(() => (ended = true));
      await waitFor(() => ids(subA).length >= 3 && ids(subB).length >= 3, 5000);
      const readyStatus = async () => Promise.all([a, b].map(async (t) => (await getJson(`${t.url}/health/ready`)).status));
      expect(await readyStatus()).toEqual([200, 200]);

      /** Polls readiness on both instances until it is `status` on both (or the time is up). */
      const readyBecomes = async (status: number, timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        let last = await readyStatus();
        while (!last.every((s) => s === status) && Date.now() < deadline) {
          await sleep(50);
          last = await readyStatus();
        }
        return last;
      };

      await server.kill();
      const lastBefore = ids(subA).at(-1)!;
      expect(await readyBecomes(503, 3000)).toEqual([503, 503]);
      await sleep(1000);
      expect(ended).toBe(false);

      await server.start();
      expect(await readyBecomes(200, 8000)).toEqual([200, 200]);
      await waitFor(() => [a, b].filter(isLeader).length === 1, 5000, () => 'no leader after the outage');

      // Live ticks flow again to the subscribers that stayed connected, on both instances.
      await waitFor(() => ids(subA).length >= ids(subB).length && subA.ticks().some((t) => idAfter(t.id, lastBefore)), 5000);
      await waitFor(() => subB.ticks().filter((t) => idAfter(t.id, lastBefore)).length >= 5, 5000);
      mover.stop();
      await sleep(3 * POLL_MS);
      // Every tick the log holds reaches both (each instance's tail reads on its own connection:
      // on a loaded machine one may still be a read behind the other).
      const logged = await streamIdsAfter(prefix, lastBefore, server.url);
      await waitFor(() => [subA, subB].every((s) => ids(s).at(-1) === logged.at(-1)), 5000, () => `last ids ${ids(subA).at(-1)} ${ids(subB).at(-1)} ${logged.at(-1)}`);
      expect(ended).toBe(false);
      for (const s of [subA, subB]) expectStrictlyIncreasing(ids(s));
      const afterOutage = (s: RawStream) => ids(s).filter((id) => idAfter(id, lastBefore));
      expect(afterOutage(subB)).toEqual(afterOutage(subA));
      expect(afterOutage(subA)).toEqual(await streamIdsAfter(prefix, lastBefore, server.url));

      // This Redis lost its data: a resume point from before the outage can no longer be proven complete.
      const late = await open(`${b.url}/api/prices/stream?pairs=BTC-USD`, { 'Last-Event-ID': lastBefore });
      await waitFor(() => late.frames().some((f) => f.data !== undefined), 5000);
      expect(late.frames().find((f) => f.data !== undefined)?.event).toBe('reset');
    } finally {
      for (const t of apps.splice(0)) await t.close();
      await server.kill();
    }
  }, 40_000);
});
