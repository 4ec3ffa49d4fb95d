import { startApp, type TestApp } from './support/app';
import { startCluster } from './support/cluster';
import { deletePrefix, randomPrefix, REDIS_URL, testClient } from './support/redis';
import { openStream, type RawStream } from './support/sse';
import { bearer, mint, TEST_SECRET } from './support/tokens';
import { waitFor } from './support/wait';

jest.setTimeout(90_000);

/** Two instances on one Redis: a token's maxConnections holds across them (SharedSubSlots). */
describe('a per-sub cap across instances (Redis)', () => {
  const prefix = randomPrefix();
  const apps: TestApp[] = [];
  const streams: RawStream[] = [];
  const open = async (t: TestApp, headers: Record<string, string>) => {
    const s = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`, headers);
    streams.push(s);
    return s;
  };
  const refusal = async (s: RawStream) => {
    await s.ended;
    return { status: s.status, ...(JSON.parse(s.text()) as { code: string; message: string }) };
  };

  afterAll(async () => {
    for (const s of streams) s.close();
    for (const t of apps) await t.close();
    await deletePrefix(prefix);
  });

  it('refuses the third stream of a sub with maxConnections 2 on either instance (429 TOO_MANY_CONNECTIONS), and frees the slot when one closes', async () => {
    for (let i = 0; i < 2; i++) apps.push(await startApp({ AUTH_JWT_SECRET: TEST_SECRET, AUTH_REQUIRED: 'streams', REDIS_URL, REDIS_PREFIX: prefix }));
    const [a, b] = apps;
    const auth = bearer(await mint('partner-bot', { maxConnections: 2 }));
    const first = await open(a, auth);
    const second = await open(b, auth);
    expect([first.status, second.status]).toEqual([200, 200]);
    // Each instance holds one, under the cap on its own: the shared count refuses.
    for (const t of [a, b]) {
      expect(await refusal(await open(t, auth))).toMatchObject({ status: 429, statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: 'at most 2 streams per subscriber' });
    }
    // Another sub is not held back.
    const other = await open(a, bearer(await mint('someone-else', { maxConnections: 2 })));
    expect(other.status).toBe(200);
    other.close();
    const redis = testClient();
    try {
      const counts = await redis.hgetall(`${prefix}:subs:partner-bot`);
      expect(Object.values(counts).sort()).toEqual(['1', '1']);
      // Closing the stream on `a` frees a slot, for either instance.
      first.close();
      await waitFor(async () => Object.values(await redis.hgetall(`${prefix}:subs:partner-bot`)).join() === '1', 5000);
      const again = await open(b, auth);
      expect(again.status).toBe(200);
      expect(await refusal(await open(a, auth))).toMatchObject({ status: 429, code: 'TOO_MANY_CONNECTIONS' });
      // An instance that shuts down takes its counts and liveness key with it.
      second.close();
      again.close();
      for (const t of apps.splice(0)) await t.close();
      expect(await redis.keys(`${prefix}:instance:*`)).toEqual([]);
      expect(await redis.exists(`${prefix}:subs:partner-bot`)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});

/** WORKERS=2 beside a single instance, on one Redis: each worker is an instance of the count, and a killed worker's slots stop counting. */
describe('a per-sub cap across workers and instances (Redis)', () => {
  const prefix = randomPrefix();

  afterAll(() => deletePrefix(prefix));

  it("counts a worker's streams with the other instance's, and forgets a killed worker's once its liveness key expires", async () => {
    const env = { AUTH_JWT_SECRET: TEST_SECRET, AUTH_REQUIRED: 'streams', REDIS_URL, REDIS_PREFIX: prefix };
    const c = await startCluster(env);
    const single = await startApp(env);
    const redis = testClient();
    const held: RawStream[] = [];
    try {
      const auth = bearer(await mint('desk', { maxConnections: 2 }));
      const onWorker = await c.stream('pairs=BTC-USD', auth);
      held.push(onWorker.stream, await openStream(`${single.url}/api/prices/stream?pairs=BTC-USD`, auth));
      expect(held.map((s) => s.status)).toEqual([200, 200]);
      const third = await openStream(`${single.url}/api/prices/stream?pairs=BTC-USD`, auth);
      expect(third.status).toBe(429);
      expect((await c.stream('pairs=BTC-USD', auth)).stream.status).toBe(429);
      expect(await redis.hlen(`${prefix}:subs:desk`)).toBe(2);
      // The worker dies without a word: its field counts until its liveness key (15 s) expires.
      const pid = c.workerPids().get(onWorker.worker);
      expect(pid).toBeDefined();
      process.kill(pid!, 'SIGKILL');
      await waitFor(
        async () => {
          const s = await openStream(`${single.url}/api/prices/stream?pairs=BTC-USD`, auth);
          if (s.status === 200) held.push(s);
          return s.status === 200;
        },
        25_000,
      );
      expect(Object.values(await redis.hgetall(`${prefix}:subs:desk`))).toEqual(['2']);
    } finally {
      for (const s of held) s.close();
      redis.disconnect();
      await single.close();
      await c.stop();
    }
  });
});
