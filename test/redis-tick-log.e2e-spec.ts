import { loadConfig } from '../src/config/app-config';
import { parseTickId } from '../src/domain/tick-id';
import { encode } from '../src/redis/redis-stream-reads';
import { RedisTickLog } from '../src/redis/redis-tick-log';
import { RedisClients } from '../src/redis/redis.clients';
import type { ResetEvent, Tick } from '../src/shared/wire';
import type { TickDraft } from '../src/stream/tick-log';
import { deletePrefix, randomPrefix, REDIS_URL, testClient } from './support/redis';
import { sleep, waitFor } from './support/sse';

const draft = (pair: string, price: number): TickDraft => ({ pair, price, timestamp: new Date().toISOString(), source: 'simulated' });
const idOf = (raw: string) => parseTickId(raw)!;

/** A RedisTickLog on its own connections, as one instance would have it. */
async function openLog(prefix: string, env: Record<string, string> = {}) {
  const config = loadConfig({ REDIS_URL, REDIS_PREFIX: prefix, PAIRS: 'BTC-USD,ETH-USD', ...env });
  const clients = new RedisClients(config);
  await clients.connect();
  const lags: number[] = [];
  const log = new RedisTickLog(clients, config, { blockMs: 200, refreshMs: 100, onTailLag: (seconds) => lags.push(seconds) });
  const seen: Tick[] = [];
  log.committed$.subscribe((tick) => seen.push(tick));
  return {
    log,
    clients,
    seen,
    lags,
    close: async () => {
      await log.beforeApplicationShutdown();
      await clients.onApplicationShutdown();
    },
  };
}

describe(RedisTickLog.name, () => {
  let prefix: string;
  const opened: { close(): Promise<void> }[] = [];
  const open = async (env: Record<string, string> = {}) => {
    const l = await openLog(prefix, env);
    opened.push(l);
    return l;
  };

  beforeEach(() => {
    prefix = randomPrefix();
  });
  afterEach(async () => {
    for (const l of opened.splice(0)) await l.close();
    await deletePrefix(prefix);
  });

  it('gives ticks Redis stream ids and delivers every append, from any instance, in the same order to every tail', async () => {
    const a = await open();
    const b = await open();
    await a.log.latestPerPair(); // starts the tails
    await b.log.latestPerPair();
    const appended: Tick[] = [];
    for (let i = 0; i < 20; i++) appended.push(await (i % 2 ? a : b).log.append(draft(i % 3 ? 'BTC-USD' : 'ETH-USD', 100 + i)));
    for (const t of appended) expect(t.id).toMatch(/^\d+-\d+$/);
    await waitFor(() => a.seen.length === 20 && b.seen.length === 20, 5000);
    expect(a.seen).toEqual(appended);
    expect(b.seen).toEqual(appended);
    const redis = testClient();
    const stored = (await redis.xrange(`${prefix}:ticks`, '-', '+')).map(([id]) => id);
    redis.disconnect();
    expect(stored).toEqual(appended.map((t) => t.id));
    // Every page the tails read told its lag (price_stream_redis_tail_lag_seconds); a timed-out
    // XREAD tells nothing.
    expect(a.lags.length).toBeGreaterThan(0);
    expect(a.lags.every((s) => s >= 0 && s < 2)).toBe(true);
    const pages = a.lags.length;
    await sleep(500);
    expect(a.lags.length).toBe(pages);
  });

  it('restores the latest tick of each pair at start-up and tails from there', async () => {
    const writer = await open();
    await writer.log.append(draft('BTC-USD', 1));
    const eth = await writer.log.append(draft('ETH-USD', 2));
    const btc = await writer.log.append(draft('BTC-USD', 3));
    const reader = await open();
    expect((await reader.log.latestPerPair()).sort((x, y) => x.pair.localeCompare(y.pair))).toEqual([btc, eth]);
    const next = await writer.log.append(draft('BTC-USD', 4));
    await waitFor(() => reader.seen.length === 1);
    expect(reader.seen).toEqual([next]);
  });

  it('reads exactly the ticks of the asked pairs after an id, and at or after a time', async () => {
    const { log } = await open();
    const ticks: Tick[] = [];
    for (let i = 0; i < 12; i++) {
      ticks.push(await log.append(draft(i % 2 ? 'ETH-USD' : 'BTC-USD', 10 + i)));
      await sleep(2);
    }
    const afterId = await log.readAfter({ kind: 'id', id: idOf(ticks[3].id) }, new Set(['BTC-USD']));
    expect(afterId).toEqual({ complete: true, ticks: ticks.slice(4).filter((t) => t.pair === 'BTC-USD') });
    // A time compares with the ticks' own timestamps.
    const since = Date.parse(ticks[6].timestamp);
    const fromTime = await log.readAfter({ kind: 'time', ms: since }, new Set(['BTC-USD', 'ETH-USD']));
    expect(fromTime).toEqual({ complete: true, ticks: ticks.filter((t) => Date.parse(t.timestamp) >= since) });
    expect(fromTime.complete && fromTime.ticks[0]).toEqual(ticks[6]);
    const fromLast = await log.readAfter({ kind: 'id', id: idOf(ticks[11].id) }, new Set(['BTC-USD']));
    expect(fromLast).toEqual({ complete: true, ticks: [] });
  });

  it('resets a resume point below the floor once the stream was trimmed, and resumes one at or above it', async () => {
    const { log } = await open({ HISTORY_SIZE: '10' });
    const ticks: Tick[] = [];
    for (let i = 0; i < 400; i++) ticks.push(await log.append(draft('BTC-USD', 1000 + i)));
    const redis = testClient();
    const [[firstId]] = await redis.xrange(`${prefix}:ticks`, '-', '+', 'COUNT', 1);
    redis.disconnect();
    const firstIndex = ticks.findIndex((t) => t.id === firstId);
    expect(firstIndex).toBeGreaterThan(0); // `~` trimmed whole nodes
    expect(ticks.length - firstIndex).toBeLessThan(400);
    const pairs = new Set(['BTC-USD']);
    const point = (t: Tick) => ({ kind: 'id' as const, id: idOf(t.id) });

    expect(await log.readAfter(point(ticks[firstIndex]), pairs)).toEqual({ complete: true, ticks: ticks.slice(firstIndex + 1) });
    const reset = { complete: false, reset: { reason: 'history_gap', oldestId: firstId, oldestTimestamp: ticks[firstIndex].timestamp } };
    // The newest trimmed tick: everything after it is still there. The floor is the id just below
    // the first kept one, which is exactly this tick only when they share a millisecond; otherwise
    // the log cannot tell it from a lost tick and resets (conservative, never a silent gap).
    const newestTrimmed = ticks[firstIndex - 1];
    const sameMs = idOf(newestTrimmed.id).ms === idOf(firstId).ms;
    expect(await log.readAfter(point(newestTrimmed), pairs)).toEqual(sameMs ? { complete: true, ticks: ticks.slice(firstIndex) } : reset);
    // One further back, a trimmed tick follows it: reset, naming the oldest tick kept.
    expect(await log.readAfter(point(ticks[firstIndex - 2]), pairs)).toEqual(reset);
    expect(await log.readAfter({ kind: 'time', ms: idOf(ticks[0].id).ms }, pairs)).toEqual(reset);
    expect((await log.history('BTC-USD', idOf(ticks[0].id).ms, 5)).complete).toBe(false);
    expect((await log.history('BTC-USD', undefined, 5)).complete).toBe(false);
  });

  it('treats everything before a deleted (or flushed) stream as a gap', async () => {
    const { log } = await open();
    const old = await log.append(draft('BTC-USD', 1));
    const redis = testClient();
    await redis.del(`${prefix}:ticks`);
    const point = { kind: 'id' as const, id: idOf(old.id) };
    const pairs = new Set(['BTC-USD']);
    expect(await log.readAfter(point, pairs)).toEqual({ complete: false, reset: { reason: 'history_gap', oldestId: null, oldestTimestamp: null } });
    // In `old`'s millisecond the fresh tick would get the id right after it (the next test), and
    // nothing can lie between the two: a resume from `old` is then complete, not a gap. A later
    // millisecond leaves room for ticks the lost stream had.
    while (Date.now() <= idOf(old.id).ms) await sleep(1);
    const fresh = await log.append(draft('BTC-USD', 2));
    redis.disconnect();
    expect(await log.readAfter(point, pairs)).toEqual({ complete: false, reset: { reason: 'history_gap', oldestId: fresh.id, oldestTimestamp: fresh.timestamp } });
    // The new stream is complete from its first entry on.
    expect(await log.readAfter({ kind: 'id', id: idOf(fresh.id) }, pairs)).toEqual({ complete: true, ticks: [] });
  });

  // Redis keeps ids increasing only while the stream exists: a new one starts from its clock.
  // In the same millisecond as the last tick before (CI once gave the deleted stream's id again,
  // above), or with that clock behind, the new tick would be taken for one the subscribers had.
  it('keeps ids increasing across a lost stream: the next tick comes after every id it appended or read, even one ahead of the clock', async () => {
    const { log, seen } = await open();
    await log.latestPerPair();
    const redis = testClient();
    try {
      const aheadMs = Date.now() + 60_000;
      const ahead = await redis.xadd(`${prefix}:ticks`, `${aheadMs}-3`, ...encode(draft('BTC-USD', 1)));
      await waitFor(() => seen.some((t) => t.id === ahead), 5000);
      await redis.del(`${prefix}:ticks`);
      const fresh = await log.append(draft('BTC-USD', 2));
      expect(fresh.id).toBe(`${aheadMs}-4`);
      // The stream exists again: Redis keeps the next ids after it.
      const next = await log.append(draft('BTC-USD', 3));
      expect(idOf(next.id)).toEqual({ ms: aheadMs, seq: 5 });
      // Lost again: the next comes after the newest it appended (which its tail may not have read yet).
      await redis.del(`${prefix}:ticks`);
      expect((await log.append(draft('BTC-USD', 4))).id).toBe(`${aheadMs}-6`);
    } finally {
      redis.disconnect();
    }
  });

  it('tells of a gap once when its tail comes back below the floor (Redis came back empty), then delivers every tick the stream holds, in order', async () => {
    const a = await open();
    const writer = await open();
    await a.log.latestPerPair();
    await writer.log.latestPerPair();
    const gaps: ResetEvent[] = [];
    a.log.gaps$.subscribe((g) => gaps.push(g));
    await writer.log.append(draft('BTC-USD', 1));
    await waitFor(() => a.seen.length === 1, 5000);
    a.clients.tail.disconnect();
    const redis = testClient();
    await redis.del(`${prefix}:ticks`);
    redis.disconnect();
    await sleep(5);
    const after: Tick[] = [];
    for (let i = 0; i < 3; i++) after.push(await writer.log.append(draft(i === 1 ? 'ETH-USD' : 'BTC-USD', 10 + i)));
    await a.clients.tail.connect();
    await waitFor(() => gaps.length > 0 && a.seen.length >= 1 + after.length, 5000, () => `gaps ${gaps.length}, seen ${a.seen.length}`);
    await sleep(300);
    expect(gaps).toHaveLength(1);
    expect(a.seen.slice(1).map((t) => t.id)).toEqual(after.map((t) => t.id));
  });

  it('tells of a reset once when its tail resumes on a Redis that lacks ticks it delivered (a promoted replica behind its primary), then goes on after them', async () => {
    const a = await open();
    const writer = await open();
    await a.log.latestPerPair();
    await writer.log.latestPerPair();
    const gaps: ResetEvent[] = [];
    a.log.gaps$.subscribe((g) => gaps.push(g));
    const replicated = await writer.log.append(draft('BTC-USD', 1));
    await writer.log.append(draft('BTC-USD', 2));
    await waitFor(() => a.seen.length === 2, 5000);
    a.clients.tail.disconnect();
    // The primary is gone; the replica promoted in its place had received the first tick only.
    const redis = testClient();
    await redis.del(`${prefix}:ticks`);
    await redis.xadd(`${prefix}:ticks`, replicated.id, 'pair', 'BTC-USD', 'price', '1', 'timestamp', replicated.timestamp, 'source', 'simulated');
    redis.disconnect();
    await sleep(5);
    const next = await writer.log.append(draft('BTC-USD', 3));
    await a.clients.tail.connect();
    await waitFor(() => gaps.length > 0 && a.seen.length >= 3, 5000, () => `gaps ${gaps.length}, seen ${a.seen.length}`);
    await sleep(300);
    expect(gaps).toEqual([{ reason: 'history_gap', oldestId: replicated.id, oldestTimestamp: replicated.timestamp }]);
    expect(a.seen.slice(2).map((t) => t.id)).toEqual([next.id]);
  });

  it('serves history pages of one pair: the newest ones, or the first ones from a time', async () => {
    const { log } = await open();
    const ticks: Tick[] = [];
    for (let i = 0; i < 30; i++) {
      ticks.push(await log.append(draft(i % 3 === 0 ? 'ETH-USD' : 'BTC-USD', 50 + i)));
      await sleep(1);
    }
    const btc = ticks.filter((t) => t.pair === 'BTC-USD');
    expect(await log.history('BTC-USD', undefined, 5)).toEqual({ complete: true, ticks: btc.slice(-5) });
    const since = Date.parse(btc[4].timestamp);
    const page = await log.history('BTC-USD', since, 3);
    expect(page.complete).toBe(true);
    expect(page.ticks).toEqual(btc.filter((t) => Date.parse(t.timestamp) >= since).slice(0, 3));
    expect(page.ticks[0]).toEqual(btc[4]);
    expect(await log.history('SOL-USD', undefined, 5)).toEqual({ complete: true, ticks: [] });
  });

  it('shares confirmations of unchanged prices with the other instances', async () => {
    const leader = await open();
    const follower = await open();
    await follower.log.latestPerPair();
    const got: { pair: string; atMs: number }[] = [];
    follower.log.confirmations$.subscribe((c) => got.push(c));
    leader.log.shareConfirmation({ pair: 'ETH-USD', atMs: 1234 });
    await waitFor(() => got.some((c) => c.pair === 'ETH-USD' && c.atMs === 1234), 3000);
  });

  it('keeps stats of the window', async () => {
    const { log } = await open();
    await log.latestPerPair();
    const a = await log.append(draft('BTC-USD', 1));
    const b = await log.append(draft('BTC-USD', 2));
    await waitFor(() => log.stats().size === 2, 3000);
    expect(log.stats()).toEqual({ size: 2, oldestId: a.id, newestId: b.id });
  });
});
