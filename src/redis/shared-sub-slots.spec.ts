import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { LocalSlots } from '../stream/slots';
import { SharedSubSlots } from './shared-sub-slots';

/** Against the Redis the e2e specs use (REDIS_URL, else 127.0.0.1:6379), under a prefix of its own. */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('SharedSubSlots (per-sub cap across instances, real Redis)', () => {
  const prefix = `test:subslots:${randomBytes(6).toString('hex')}`;
  const key = (name: string) => `${prefix}:${name}`;
  let redis: Redis;
  const made: SharedSubSlots[] = [];

  /** An instance: its own LocalSlots (a generous box cap) wrapped, a short liveness TTL. */
  function instance(ttlMs = 600, inner = new LocalSlots(100, 100)): SharedSubSlots {
    const slots = new SharedSubSlots(inner, redis, key, 5, ttlMs);
    slots.onModuleInit();
    made.push(slots);
    return slots;
  }

  beforeAll(() => {
    redis = new Redis(REDIS_URL, { protocol: 2, maxRetriesPerRequest: 1 });
  });
  afterEach(async () => {
    for (const s of made.splice(0)) await s.beforeApplicationShutdown();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });
  afterAll(() => redis.quit());

  it('counts a sub across instances up to its cap; a give frees a slot; addresses stay per instance', async () => {
    const a = instance();
    const b = instance();
    expect(await a.take('sub:alice', 2)).toBeNull();
    expect(await b.take('sub:alice', 2)).toBeNull();
    expect(await a.take('sub:alice', 2)).toBe('ip');
    expect(await b.take('sub:alice', 2)).toBe('ip');
    expect(await redis.hgetall(key('subs:alice'))).toEqual({ [a.id]: '1', [b.id]: '1' });
    expect(await redis.pttl(key('subs:alice'))).toBeGreaterThan(0);
    // Another sub and addresses are not held back.
    expect(await a.take('sub:bob', 2)).toBeNull();
    for (let i = 0; i < 5; i++) expect(await a.take('10.0.0.1')).toBeNull();
    expect(await redis.exists(key('subs:10.0.0.1'))).toBe(0);
    b.give('sub:alice');
    await waitFor(async () => (await redis.hgetall(key('subs:alice')))[b.id] === undefined);
    expect(await a.take('sub:alice', 2)).toBeNull();
    expect(await redis.hgetall(key('subs:alice'))).toEqual({ [a.id]: '2' });
  });

  it('gives the inner slot back when Redis refuses, and refuses as the inner cap does', async () => {
    const inner = new LocalSlots(100, 100);
    const a = instance(600, inner);
    const b = instance();
    expect(await b.take('sub:carol', 1)).toBeNull();
    expect(await a.take('sub:carol', 1)).toBe('ip');
    // The refused take left no inner slot behind: the inner cap of 1 still has room.
    expect(await inner.take('sub:carol', 1)).toBeNull();
    // The inner cap refuses first, without asking Redis.
    expect(await a.take('sub:carol', 1)).toBe('ip');
  });

  it("stops counting a dead instance's slots once its liveness key expires, and deletes its field", async () => {
    const a = instance(300);
    const dead = new SharedSubSlots(new LocalSlots(100, 100), redis, key, 5, 300);
    expect(await dead.take('sub:dave', 2)).toBeNull();
    expect(await dead.take('sub:dave', 2)).toBeNull();
    // `dead` never refreshes (no onModuleInit, no shutdown): a crashed process.
    expect(await a.take('sub:dave', 2)).toBe('ip');
    await waitFor(async () => (await redis.exists(key(`instance:${dead.id}`))) === 0);
    expect(await a.take('sub:dave', 2)).toBeNull();
    expect(await redis.hgetall(key('subs:dave'))).toEqual({ [a.id]: '1' });
  });

  it('keeps a live instance counted past its TTL (refreshed), and on shutdown deletes its liveness key and fields', async () => {
    const a = instance(300);
    expect(await a.take('sub:erin', 1)).toBeNull();
    await new Promise((r) => setTimeout(r, 700));
    const b = instance(300);
    expect(await b.take('sub:erin', 1)).toBe('ip');
    await a.beforeApplicationShutdown();
    expect(await redis.exists(key(`instance:${a.id}`))).toBe(0);
    expect(await redis.hget(key('subs:erin'), a.id)).toBeNull();
    expect(await b.take('sub:erin', 1)).toBeNull();
  });

  it('rewrites its own count on refresh (a give Redis did not answer is repaired)', async () => {
    const a = instance(300);
    expect(await a.take('sub:fay', 3)).toBeNull();
    expect(await a.take('sub:fay', 3)).toBeNull();
    await redis.hset(key('subs:fay'), a.id, 7);
    await waitFor(async () => (await redis.hget(key('subs:fay'), a.id)) === '2');
    a.give('sub:fay');
    a.give('sub:fay');
    await waitFor(async () => (await redis.exists(key('subs:fay'))) === 0);
  });

  it('fails open to the inner broker when Redis does not answer', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const inner = new LocalSlots(100, 100);
    const a = new SharedSubSlots(inner, down, key, 5);
    expect(await a.take('sub:gus', 1)).toBeNull();
    // The inner cap still holds.
    expect(await a.take('sub:gus', 1)).toBe('ip');
    a.give('sub:gus');
    expect(await a.take('sub:gus', 1)).toBeNull();
    await a.beforeApplicationShutdown();
    down.disconnect();
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
