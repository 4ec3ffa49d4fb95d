import { startCluster, type Cluster } from './support/cluster';
import { mint, TEST_SECRET } from './support/tokens';

/** WORKERS=2 (node dist/main.js): a token's `sub` is counted by the primary for every worker, as an address is. */
jest.setTimeout(60_000);

describe('a per-sub cap across workers', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster({ AUTH_JWT_SECRET: TEST_SECRET, AUTH_REQUIRED: 'streams', POLL_INTERVAL_MS: '200' });
  });
  afterAll(async () => {
    expect(await c.stop()).toBe(0);
  });

  it('refuses the sub past its maxConnections wherever a stream lands, also on a worker that holds fewer of its streams', async () => {
    const token = await mint('partner-bot', { maxConnections: 2 });
    const auth = { Authorization: `Bearer ${token}` };
    const held = [await c.stream('pairs=BTC-USD', auth), await c.stream('pairs=BTC-USD', auth)];
    try {
      expect(held.map((s) => s.stream.status)).toEqual([200, 200]);
      const holds = (w: number) => held.filter((s) => s.worker === w).length;
      // The kernel picks the worker (SCHED_NONE): attempts go on until one lands on a worker that
      // holds fewer than 2 of the sub's streams (at once when the two held are on different
      // workers), at least 12, at most 60; every one is refused.
      const by: number[] = [];
      while (by.length < 60 && (by.length < 12 || !by.some((w) => holds(w) < 2))) {
        const s = await c.stream('pairs=BTC-USD', auth);
        expect(s.stream.status).toBe(429);
        expect(JSON.parse(await s.stream.ended.then(() => s.stream.text()))).toMatchObject({ code: 'TOO_MANY_CONNECTIONS', message: 'at most 2 streams per subscriber' });
        by.push(s.worker);
      }
      expect({ workers: [...new Set(by)].sort(), onFewer: by.some((w) => holds(w) < 2) }).toEqual({ workers: expect.any(Array), onFewer: true });
      // Another sub, from the same address, is not held back by it.
      const other = await c.stream('pairs=BTC-USD', { Authorization: `Bearer ${await mint('someone-else')}` });
      expect(other.stream.status).toBe(200);
      other.stream.close();
      expect((await c.stream('pairs=BTC-USD')).stream.status).toBe(401);
    } finally {
      for (const s of held) s.stream.close();
    }
  });
});
