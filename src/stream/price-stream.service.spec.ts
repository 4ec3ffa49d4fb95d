import { loadConfig } from '../config/app-config';
import { formatTickId, parseTickId } from '../domain/tick-id';
import { MetricsService } from '../metrics/metrics.service';
import type { Tick } from '../shared/wire';
import { MemoryTickLog } from './memory-tick-log';
import { PriceStreamService } from './price-stream.service';

const PAIRS = ['BTC-USD', 'ETH-USD', 'SOL-USD'];

function setup(env: Record<string, string> = {}, now: () => number = Date.now) {
  const config = loadConfig({ PAIRS: PAIRS.join(','), ...env });
  const log = new MemoryTickLog(config, now);
  const stream = new PriceStreamService(log, config, new MetricsService());
  let price = 100;
  const publish = (pair: string, p = ++price) =>
    log.publish({ pair, price: p, source: 'simulated', timestamp: new Date(now()).toISOString() });
  return { config, log, stream, publish };
}

describe(PriceStreamService.name, () => {
  it('publishes a tick only when the price of that pair changed', async () => {
    const { publish } = setup();
    expect(await publish('BTC-USD', 100)).not.toBeNull();
    expect(await publish('BTC-USD', 100)).toBeNull();
    expect(await publish('ETH-USD', 100)).not.toBeNull();
    expect(await publish('BTC-USD', 101)).not.toBeNull();
  });

  it('publishes a tick when only the bid or ask changed, but not for a source that gives none at the same price', async () => {
    const { log } = setup();
    const draft = (extra: { bid?: number; ask?: number }) => ({ pair: 'BTC-USD', price: 100, source: 'kraken' as const, timestamp: new Date().toISOString(), ...extra });
    expect(await log.publish(draft({ bid: 99, ask: 101 }))).not.toBeNull();
    expect(await log.publish(draft({ bid: 99, ask: 101 }))).toBeNull();
    expect(await log.publish(draft({ bid: 99.5, ask: 101 }))).toMatchObject({ bid: 99.5 });
    expect(await log.publish({ ...draft({}), source: 'coinbase' })).toBeNull();
  });

  it('hands out strictly increasing ids across all pairs, with a sequence within one millisecond', async () => {
    let t = 1_700_000_000_000;
    const { publish } = setup({}, () => t);
    const a = await publish('BTC-USD');
    const b = await publish('ETH-USD');
    t += 5;
    const c = await publish('BTC-USD');
    expect([a!.id, b!.id, c!.id]).toEqual([`${t - 5}-1`, `${t - 5}-2`, `${t}-0`]);
  });

  it('keeps the latest tick of each pair and replays it to a new observer of the channel', async () => {
    const { stream, publish } = setup();
    await publish('BTC-USD');
    const last = await publish('BTC-USD');
    const seen: Tick[] = [];
    const sub = stream.live('BTC-USD').subscribe((t) => seen.push(t));
    const next = await publish('BTC-USD');
    sub.unsubscribe();
    expect(seen).toEqual([last, next]);
    expect(stream.latest('BTC-USD')).toEqual(next);
  });

  it("has the log deliver each committed tick straight into its pair's channel, in id order, and joins read the channel's replay", async () => {
    const { stream, log, publish } = setup();
    const first = await publish('BTC-USD');
    const seen: string[] = [];
    stream.live('BTC-USD').subscribe((t) => seen.push(t.id));
    const second = await publish('BTC-USD');
    (log as unknown as { commit(tick: Tick): void }).commit(first!); // an older tick again (a tail that reads it twice): dropped
    expect(seen).toEqual([first!.id, second!.id]);
    expect(stream.replayed('BTC-USD')).toBe(second);
    expect(stream.latest('BTC-USD')).toBe(second);
    expect(stream.replayed('ETH-USD')).toBeUndefined();
  });

  it('completes the channels at shutdown', async () => {
    const { stream } = setup();
    let completed = 0;
    for (const pair of PAIRS) stream.live(pair).subscribe({ complete: () => completed++ });
    stream.beforeApplicationShutdown();
    expect(completed).toBe(3);
  });
});

describe(MemoryTickLog.name, () => {
  it('keeps at most HISTORY_SIZE ticks and serves history pages oldest first', async () => {
    const { publish, log } = setup({ HISTORY_SIZE: '50' });
    const ticks: Tick[] = [];
    for (let i = 0; i < 120; i++) ticks.push((await publish('BTC-USD'))!);
    expect(log.stats()).toEqual({ size: 50, oldestId: ticks[70].id, newestId: ticks[119].id });
    const page = await log.history('BTC-USD', undefined, 10);
    expect(page.ticks.map((t) => t.id)).toEqual(ticks.slice(110).map((t) => t.id));
    expect(page.complete).toBe(false);
  });

  it('finds history by time with a binary search and says whether the window reaches back', async () => {
    let t = 2_000_000_000_000;
    const { publish, log } = setup({}, () => t);
    const ticks: Tick[] = [];
    for (let i = 0; i < 10; i++) {
      t += 1000;
      ticks.push((await publish('ETH-USD'))!);
    }
    const page = await log.history('ETH-USD', 2_000_000_005_000, 3);
    expect(page).toEqual({ complete: true, ticks: ticks.slice(4, 7) });
    expect((await log.history('ETH-USD', 1_000, 3)).complete).toBe(false);
  });

  it('gives a replica (a worker) the same window, floor and answers, and keeps what is forwarded in id order', async () => {
    let t = 2_000_000_000_000;
    const { publish, log, config } = setup({ HISTORY_SIZE: '5' }, () => t);
    const ticks: Tick[] = [];
    for (let i = 0; i < 8; i++) {
      t += 1000;
      ticks.push((await publish('BTC-USD'))!);
    }
    class Replica extends MemoryTickLog {
      feed(tick: Tick) {
        this.insert(tick);
      }
    }
    const replica = new Replica(config, () => t, log.snapshot());
    const got: string[] = [];
    replica.committed$.subscribe((tick) => got.push(tick.id));
    expect(replica.stats()).toEqual(log.stats());
    const pairs = new Set(['BTC-USD']);
    // Inside the window, and before it (trimmed): the same answer from both.
    for (const from of [ticks[4].id, ticks[1].id]) expect(await replica.readAfter({ kind: 'id', id: parseTickId(from)! }, pairs)).toEqual(await log.readAfter({ kind: 'id', id: parseTickId(from)! }, pairs));
    t += 1000;
    const next = (await publish('BTC-USD'))!;
    replica.feed(next);
    replica.feed(next); // twice, or an older one: ignored
    replica.feed(ticks[6]);
    expect(got).toEqual([next.id]);
    expect(replica.stats()).toEqual(log.stats());
    expect(await replica.history('BTC-USD', undefined, 10)).toEqual(await log.history('BTC-USD', undefined, 10));
  });

  it('formats ids as Redis stream ids', () => {
    expect(formatTickId({ ms: 1763758800123, seq: 0 })).toBe('1763758800123-0');
  });
});
