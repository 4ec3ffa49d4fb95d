import type { Tick } from '../../../src/shared/wire';
import { ResumeTracker } from './resume-tracker';

const T0 = Date.parse('2026-11-21T21:00:00.000Z');
const tick = (id: string, atMs: number, pair = 'BTC-USD'): Tick => ({
  id,
  pair,
  price: 100,
  timestamp: new Date(atMs).toISOString(),
  source: 'simulated',
});

describe(ResumeTracker.name, () => {
  it('remembers the newest id to resume from', () => {
    const t = new ResumeTracker();
    expect(t.lastId).toBeNull();
    t.accept(tick(`${T0}-0`, T0), T0);
    t.accept(tick(`${T0 + 5}-0`, T0 + 5), T0 + 5);
    expect(t.lastId).toBe(`${T0 + 5}-0`);
  });

  it('drops a tick whose id is not after the last one when a replay overlaps', () => {
    const t = new ResumeTracker();
    t.accept(tick(`${T0}-1`, T0), T0);
    expect(t.accept(tick(`${T0}-1`, T0), T0)).toEqual({ kind: 'duplicate' });
    expect(t.accept(tick(`${T0}-0`, T0), T0)).toEqual({ kind: 'duplicate' });
    expect(t.lastId).toBe(`${T0}-1`);
  });

  it('counts the replayed ticks before the first live one when a reconnect resumes', () => {
    const t = new ResumeTracker();
    t.accept(tick(`${T0}-0`, T0), T0);
    // Away from T0+1000 to T0+4000; the server published three ticks meanwhile.
    t.beginResume(T0 + 4000);
    expect(t.resuming).toBe(true);
    expect(t.accept(tick(`${T0 + 1500}-0`, T0 + 1500), T0 + 4001)).toEqual({ kind: 'new', resumed: null });
    expect(t.accept(tick(`${T0 + 2500}-0`, T0 + 2500), T0 + 4001)).toEqual({ kind: 'new', resumed: null });
    expect(t.accept(tick(`${T0 + 3500}-0`, T0 + 3500), T0 + 4002)).toEqual({ kind: 'new', resumed: null });
    expect(t.accept(tick(`${T0 + 4300}-0`, T0 + 4300), T0 + 4301)).toEqual({ kind: 'new', resumed: 3 });
    expect(t.resuming).toBe(false);
  });

  it('does not count duplicates of what arrived before the disconnect', () => {
    const t = new ResumeTracker();
    t.accept(tick(`${T0 + 100}-0`, T0 + 100), T0 + 100);
    t.beginResume(T0 + 3000);
    t.accept(tick(`${T0 + 100}-0`, T0 + 100), T0 + 3001);
    t.accept(tick(`${T0 + 2000}-0`, T0 + 2000), T0 + 3001);
    expect(t.settle()).toBe(1);
  });

  it('corrects for a server clock that runs behind, using the fastest delivery seen', () => {
    const t = new ResumeTracker();
    // Server clock 10 s behind: ticks arrive 10 s "after" their timestamp.
    t.accept(tick(`${T0}-0`, T0), T0 + 10_000);
    t.beginResume(T0 + 15_000); // = server time T0+5000
    expect(t.accept(tick(`${T0 + 4000}-0`, T0 + 4000), T0 + 15_001).kind).toBe('new');
    expect(t.accept(tick(`${T0 + 6000}-0`, T0 + 6000), T0 + 16_000)).toEqual({ kind: 'new', resumed: 1 });
  });

  it('learns the client clock minus the server clock from the fastest recent delivery', () => {
    const t = new ResumeTracker();
    expect(t.clockOffsetMs).toBeNull();
    // The client clock runs 3600 s ahead; deliveries take 40, 15 and 90 ms.
    const skew = 3_600_000;
    t.accept(tick(`${T0}-0`, T0), T0 + skew + 40);
    t.accept(tick(`${T0 + 100}-0`, T0 + 100), T0 + 100 + skew + 15);
    t.accept(tick(`${T0 + 200}-0`, T0 + 200), T0 + 200 + skew + 90);
    expect(t.clockOffsetMs).toBe(skew + 15);
  });

  it('reports the count through settle when no live tick follows the replay', () => {
    const t = new ResumeTracker();
    t.accept(tick(`${T0}-0`, T0), T0);
    t.beginResume(T0 + 5000);
    t.accept(tick(`${T0 + 1000}-0`, T0 + 1000), T0 + 5001);
    t.accept(tick(`${T0 + 2000}-0`, T0 + 2000), T0 + 5001);
    expect(t.settle()).toBe(2);
    expect(t.settle()).toBeNull();
  });

  it('keeps counting when a resume is cut short by another disconnect', () => {
    const t = new ResumeTracker();
    t.accept(tick(`${T0}-0`, T0), T0);
    t.beginResume(T0 + 3000);
    t.accept(tick(`${T0 + 1000}-0`, T0 + 1000), T0 + 3001);
    t.beginResume(T0 + 6000);
    t.accept(tick(`${T0 + 4000}-0`, T0 + 4000), T0 + 6001);
    expect(t.accept(tick(`${T0 + 6500}-0`, T0 + 6500), T0 + 6501)).toEqual({ kind: 'new', resumed: 2 });
  });

  it('does not start a resume when no tick was seen yet', () => {
    const t = new ResumeTracker();
    t.beginResume(T0);
    expect(t.resuming).toBe(false);
    expect(t.settle()).toBeNull();
  });

  it('forgets the last id and the running count when the server resets', () => {
    const t = new ResumeTracker();
    t.accept(tick(`${T0 + 9000}-0`, T0 + 9000), T0 + 9000);
    t.beginResume(T0 + 10_000);
    t.reset();
    expect(t.lastId).toBeNull();
    expect(t.resuming).toBe(false);
    // A restarted server may hand out ids below the old ones; after a reset they are new.
    expect(t.accept(tick(`${T0 + 500}-0`, T0 + 500), T0 + 10_001)).toEqual({ kind: 'new', resumed: null });
  });
});
