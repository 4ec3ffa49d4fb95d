import { LeaderLease } from '../src/redis/leader-lease';
import { deletePrefix, randomPrefix, testClient } from './support/redis';
import { sleep } from './support/sse';

describe(LeaderLease.name, () => {
  const redis = testClient();
  let prefix: string;
  let key: string;
  beforeEach(() => {
    prefix = randomPrefix();
    key = `${prefix}:leader`;
  });
  afterEach(() => deletePrefix(prefix));
  afterAll(() => redis.quit());

  it('takes a free lease, with its token and a TTL, and says until when it is valid', async () => {
    const lease = new LeaderLease(redis, key, 2000, 'a');
    const before = Date.now();
    const result = await lease.tryAcquire();
    expect(result).toEqual({ acquired: true, validUntil: expect.any(Number) });
    if (result.acquired) expect(result.validUntil).toBeGreaterThanOrEqual(before + 2000);
    expect(await redis.get(key)).toBe('a');
    expect(await redis.pttl(key)).toBeGreaterThan(1500);
  });

  it('does not let a second holder take the lease before it expires, and tells it when to try again', async () => {
    const first = new LeaderLease(redis, key, 600, 'a');
    const second = new LeaderLease(redis, key, 600, 'b');
    await first.tryAcquire();
    const refused = await second.tryAcquire();
    expect(refused.acquired).toBe(false);
    if (!refused.acquired) expect(refused.retryInMs).toBeGreaterThan(300);
    expect(await redis.get(key)).toBe('a');
    await sleep(700);
    expect((await second.tryAcquire()).acquired).toBe(true);
    expect(await redis.get(key)).toBe('b');
  });

  it('renews its own lease, which keeps it past the original TTL', async () => {
    const first = new LeaderLease(redis, key, 500, 'a');
    const second = new LeaderLease(redis, key, 500, 'b');
    await first.tryAcquire();
    for (let i = 0; i < 4; i++) {
      await sleep(200);
      expect(await first.renew()).toEqual(expect.any(Number));
    }
    expect((await second.tryAcquire()).acquired).toBe(false);
  });

  it('lets a late ex-leader neither extend nor delete its successor\'s lease', async () => {
    const old = new LeaderLease(redis, key, 300, 'old');
    const successor = new LeaderLease(redis, key, 5000, 'new');
    await old.tryAcquire();
    await sleep(400);
    expect((await successor.tryAcquire()).acquired).toBe(true);
    expect(await old.renew()).toBeNull();
    expect(await old.release()).toBe(false);
    expect(await redis.get(key)).toBe('new');
    expect(await redis.pttl(key)).toBeGreaterThan(4000);
  });

  it('gives the lease up on release, so another can take it at once', async () => {
    const first = new LeaderLease(redis, key, 5000, 'a');
    const second = new LeaderLease(redis, key, 5000, 'b');
    await first.tryAcquire();
    expect(await first.release()).toBe(true);
    expect(await first.holder()).toBeNull();
    expect((await second.tryAcquire()).acquired).toBe(true);
  });

  it('takes back at once a lease that already holds its own token (a SET whose answer was lost)', async () => {
    // As when Redis, frozen, ran a SET NX whose caller had already given up on the answer.
    await redis.set(key, 'a', 'PX', 5000);
    const lease = new LeaderLease(redis, key, 2000, 'a');
    const result = await lease.tryAcquire();
    expect(result).toEqual({ acquired: true, validUntil: expect.any(Number) });
    expect(await redis.pttl(key)).toBeLessThanOrEqual(2000);
    expect((await new LeaderLease(redis, key, 2000, 'b').tryAcquire()).acquired).toBe(false);
  });
});
