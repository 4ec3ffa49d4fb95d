import { backoffDelay } from './backoff';
import { Fifo } from './fifo';
import { TurnBatcher } from './turn-batcher';

describe('backoffDelay', () => {
  const policy = { baseMs: 100, maxMs: 1_000 };
  it('doubles from the base up to the cap, without jitter exactly', () => {
    expect([1, 2, 3, 4, 5, 60].map((n) => backoffDelay(n, { ...policy, jitter: 0 }))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });
  it('draws from [(1 - jitter)·d, d]', () => {
    expect(backoffDelay(3, { ...policy, random: () => 0 })).toBe(400);
    expect(backoffDelay(3, { ...policy, random: () => 0.999999 })).toBe(200);
    expect(backoffDelay(3, { ...policy, jitter: 0.25, random: () => 0.5 })).toBe(350);
  });
  it('treats an attempt below 1 as the first', () => {
    expect(backoffDelay(0, { ...policy, jitter: 0 })).toBe(100);
  });
});

describe('Fifo', () => {
  it('keeps order across compaction, with index access and lowerBound', () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 5_000; i++) q.push(i);
    for (let i = 0; i < 3_000; i++) expect(q.shift()).toBe(i);
    expect(q.length).toBe(2_000);
    expect(q.at(0)).toBe(3_000);
    expect(q.lowerBound((n) => n < 4_500)).toBe(1_500);
    q.append([5_000, 5_001]);
    expect(q.toArray().slice(-3)).toEqual([4_999, 5_000, 5_001]);
    while (q.length > 0) q.shift();
    expect(q.shift()).toBeUndefined();
  });
});

describe('TurnBatcher', () => {
  it('hands over a turn’s items once, in order, when the turn ends', async () => {
    const batches: string[][] = [];
    const batcher = new TurnBatcher<string>((items) => batches.push(items));
    batcher.add('a');
    batcher.add('b');
    batcher.add('a');
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([['a', 'b', 'a']]);
  });
  it('with unique, hands over an item added twice in a turn once', async () => {
    const batches: string[][] = [];
    const batcher = new TurnBatcher<string>((items) => batches.push(items), { unique: true });
    batcher.add('a');
    batcher.add('b');
    batcher.add('a');
    expect(batches).toEqual([]);
    await new Promise((r) => setImmediate(r));
    batcher.add('c');
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([['a', 'b'], ['c']]);
  });
  it('with gatherMs, hands over what the turns of gatherMs after the first add bring, together', async () => {
    const batches: string[][] = [];
    const batcher = new TurnBatcher<string>((items) => batches.push(items), { gatherMs: 200 });
    batcher.add('a');
    await new Promise((r) => setImmediate(r));
    batcher.add('b');
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 250));
    expect(batches).toEqual([['a', 'b']]);
    batcher.add('c');
    await new Promise((r) => setTimeout(r, 250));
    expect(batches).toEqual([['a', 'b'], ['c']]);
  });
  it('drops what waits on clear', async () => {
    const batches: string[][] = [];
    const batcher = new TurnBatcher<string>((items) => batches.push(items));
    batcher.add('a');
    batcher.clear();
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[]]);
  });
});
