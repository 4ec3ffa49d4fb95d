import { Subject } from 'rxjs';
import { loadConfig } from '../config/app-config';
import type { ResumePoint } from '../common/resume';
import { idAfter } from '../common/tick-id';
import type { ResetEvent, Tick } from '../shared/wire';
import { LiveFanout, type FanoutMember } from './live-fanout';
import { MemoryTickLog } from './memory-tick-log';
import { PriceStreamService } from './price-stream.service';
import type { TickLog } from './tick-log';

const PAIRS = ['BTC-USD', 'ETH-USD', 'SOL-USD'];

class GappyLog extends MemoryTickLog {
  readonly gap = new Subject<ResetEvent>();
  override readonly gaps$ = this.gap.asObservable();
}

/** Records what reaches it, and by which path. */
class Member implements FanoutMember {
  readonly ticks: Tick[] = [];
  readonly resets: ResetEvent[] = [];
  ended = 0;
  errors: unknown[] = [];
  viaBroadcast = 0;
  onTick(tick: Tick): void {
    this.ticks.push(tick);
  }
  onReset(reset: ResetEvent): void {
    this.resets.push(reset);
  }
  onEnd(): void {
    this.ended++;
  }
  onError(err: unknown): void {
    this.errors.push(err);
  }
}

function setup(env: Record<string, string> = {}) {
  const config = loadConfig({ PAIRS: PAIRS.join(','), ...env });
  const log = new GappyLog(config);
  const stream = new PriceStreamService(log, config);
  const fanout = new LiveFanout<Member>(stream, config.pairs, (tick, members) => {
    for (const m of members) {
      m.viaBroadcast++;
      m.onTick(tick);
    }
  });
  fanout.start();
  let price = 100;
  const publish = (pair: string) => stream.publish({ pair, price: ++price, source: 'simulated', timestamp: new Date().toISOString() });
  return { config, log, stream, fanout, publish };
}

const idResume = (id: string): ResumePoint => {
  const [ms, seq] = id.split('-').map(Number);
  return { kind: 'id', id: { ms, seq }, raw: id };
};
const flush = () => new Promise((r) => setImmediate(r));

describe(LiveFanout.name, () => {
  it('replays on the member’s own path, then hands it to the shared sets: one subscription per pair in the end', async () => {
    const { stream, fanout, publish } = setup();
    const seen = await publish('BTC-USD');
    const missed = await publish('BTC-USD');
    const base = stream.observerCount();
    const m = new Member();
    fanout.join(m, ['BTC-USD', 'ETH-USD'], idResume(seen!.id));
    expect(stream.observerCount()).toBe(base + 2);
    await flush();
    expect(stream.observerCount()).toBe(base);
    const live = [await publish('ETH-USD'), await publish('BTC-USD'), await publish('SOL-USD')];
    expect(m.ticks.map((t) => t.id)).toEqual([missed!.id, live[0]!.id, live[1]!.id]);
    expect(m.viaBroadcast).toBe(2);
    fanout.leave(m);
    await publish('BTC-USD');
    expect(m.ticks).toHaveLength(3);
    expect(fanout.size).toBe(0);
  });

  it('sends one reset per live member on a gap, however many pairs it has', async () => {
    const { log, fanout, publish } = setup();
    await publish('BTC-USD');
    const a = new Member();
    const b = new Member();
    fanout.join(a, PAIRS);
    fanout.join(b, ['ETH-USD']);
    await flush();
    const reset: ResetEvent = { reason: 'history_gap', oldestId: null, oldestTimestamp: null };
    log.gap.next(reset);
    expect(a.resets).toEqual([reset]);
    expect(b.resets).toEqual([reset]);
  });

  it('ends every member once when the stream completes, and a member that joins afterwards at once', async () => {
    const { stream, fanout } = setup();
    const live = new Member();
    fanout.join(live, PAIRS);
    await flush();
    const replaying = new Member();
    fanout.join(replaying, ['BTC-USD'], idResume(`${Date.now()}-0`));
    stream.beforeApplicationShutdown();
    expect([live.ended, replaying.ended]).toEqual([1, 1]);
    const late = new Member();
    fanout.join(late, PAIRS);
    expect(late.ended).toBe(1);
    expect(fanout.size).toBe(0);
  });

  it('reports a failed resume read to the member and forgets it', async () => {
    const { log, fanout, publish } = setup();
    const seen = await publish('BTC-USD');
    jest.spyOn(log as TickLog, 'readAfter').mockRejectedValue(new Error('redis down'));
    const m = new Member();
    fanout.join(m, ['BTC-USD'], idResume(seen!.id));
    await flush();
    expect(m.errors).toHaveLength(1);
    expect(fanout.size).toBe(0);
  });

  it('waits for the channels to catch up before handing over when the replay read ahead of them (Redis: read and tail on two connections)', async () => {
    const config = loadConfig({ PAIRS: 'BTC-USD' });
    /** A log whose tail (committed$) can fall behind what a read returns. */
    const laggingLog = () => {
      const base = new MemoryTickLog(config);
      const tail = new Subject<Tick>();
      const held: Tick[] = [];
      const lag = { holding: false, release: () => ((lag.holding = false), held.splice(0).forEach((t) => tail.next(t))) };
      base.committed$.subscribe((t) => (lag.holding ? held.push(t) : tail.next(t)));
      const log = new Proxy(base, { get: (target, key) => (key === 'committed$' ? tail.asObservable() : Reflect.get(target, key, target)) });
      return Object.assign(lag, { log });
    };
    for (const resumeAtLatest of [false, true]) {
      const lagging = laggingLog();
      const stream = new PriceStreamService(lagging.log, config);
      const fanout = new LiveFanout<Member>(stream, config.pairs, (tick, members) => members.forEach((m) => m.onTick(tick)));
      fanout.start();
      let price = 1;
      const publish = async () => (await stream.publish({ pair: 'BTC-USD', price: ++price, source: 'simulated', timestamp: new Date().toISOString() }))!;
      const seen = await publish();
      lagging.holding = true;
      const ahead = await publish(); // in the window, not yet through the tail
      const m = new Member();
      // Resuming from `seen` replays `ahead`; resuming from `ahead` itself (a client that got it
      // from another instance) replays nothing, but must not get it again either.
      fanout.join(m, ['BTC-USD'], idResume(resumeAtLatest ? ahead.id : seen.id));
      await flush();
      lagging.release(); // the tail catches up: `ahead` reaches the channels
      const after = [await publish(), await publish()];
      await flush();
      expect(m.ticks.map((t) => t.id)).toEqual(resumeAtLatest ? after.map((t) => t.id) : [ahead.id, ...after.map((t) => t.id)]);
      expect(stream.observerCount()).toBe(1); // handed over: only the fan-out's own feed is left
    }
  });

  it('delivers each id exactly once and in order under random interleaving, with a slow log too', async () => {
    let seed = 7654321;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    let recovered = 0;
    let broadcasts = 0;
    for (let round = 0; round < 20; round++) {
      const { log, fanout, publish } = setup({ HISTORY_SIZE: String(20 + Math.floor(random() * 200)) });
      if (round % 2 === 1) {
        // Like Redis: the resume read resolves a few turns later, while ticks keep coming.
        const read = log.readAfter.bind(log);
        jest.spyOn(log as TickLog, 'readAfter').mockImplementation(async (point, pairs) => {
          const result = await read(point, pairs);
          for (let i = Math.floor(random() * 3); i > 0; i--) await flush();
          return result;
        });
      }
      const published: Tick[] = [];
      type Sub = { m: Member; pairs: string[]; from: string | null; openedAt: number; closedAt?: number };
      const subs: Sub[] = [];
      const pending: Promise<unknown>[] = [];
      for (let step = 0; step < 400; step++) {
        const r = random();
        if (r < 0.55) {
          // Not awaited every time: publishes overlap joins and hand-overs.
          const p = publish(PAIRS[Math.floor(random() * 3)]).then((t) => t && published.push(t));
          if (random() < 0.5) await p;
          else pending.push(p);
        } else if (r < 0.8) {
          await Promise.all(pending.splice(0));
          const pairs = PAIRS.filter(() => random() < 0.6);
          if (pairs.length === 0) pairs.push('ETH-USD');
          const from = published.length > 0 && random() < 0.7 ? published[Math.floor(random() * published.length)].id : null;
          const m = new Member();
          fanout.join(m, pairs, from ? idResume(from) : undefined);
          subs.push({ m, pairs, from, openedAt: published.length });
        } else if (r < 0.9 && subs.length > 0) {
          await Promise.all(pending.splice(0));
          const s = subs[Math.floor(random() * subs.length)];
          if (s.closedAt === undefined) {
            fanout.leave(s.m);
            s.closedAt = published.length;
          }
        } else {
          await flush();
        }
      }
      await Promise.all(pending.splice(0));
      for (let i = 0; i < 5; i++) await flush();
      published.sort((a, b) => (a.id === b.id ? 0 : idAfter(a.id, b.id) ? 1 : -1));
      for (const s of subs) {
        const ids = s.m.ticks.map((t) => t.id);
        broadcasts += s.m.viaBroadcast;
        expect(ids.findIndex((id, i) => i > 0 && !idAfter(id, ids[i - 1]))).toBe(-1);
        expect(s.m.ticks.every((t) => s.pairs.includes(t.pair))).toBe(true);
        // A member that left may have gone before its (slow) replay came: it got a prefix.
        // One still there got every tick of its pairs published while it was there.
        if (s.closedAt === undefined) {
          const live = published.slice(s.openedAt).filter((t) => s.pairs.includes(t.pair));
          expect(live.filter((t) => !ids.includes(t.id))).toEqual([]);
        }
        if (s.from && s.m.resets.length === 0) {
          const expected = published
            .slice(0, s.closedAt ?? published.length)
            .filter((t) => idAfter(t.id, s.from!) && s.pairs.includes(t.pair))
            .map((t) => t.id);
          if (s.closedAt === undefined) {
            recovered++;
            expect(ids).toEqual(expected);
          } else {
            expect(expected.slice(0, ids.length)).toEqual(ids);
          }
        }
      }
    }
    expect(recovered).toBeGreaterThan(30);
    // Most live ticks went through the shared sets, not the members' own paths.
    expect(broadcasts).toBeGreaterThan(1000);
  });
});
