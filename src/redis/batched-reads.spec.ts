import type { ResumePoint } from '../domain/resume';
import type { Tick } from '../shared/wire';
import type { ReadAfterResult } from '../stream/tick-log';
import { BatchedReads } from './batched-reads';

const tick = (id: string, pair: string): Tick => ({ id, pair, price: 1, timestamp: '2026-01-01T00:00:00.000Z', source: 'simulated' });
const ticks = [tick('10-0', 'BTC-USD'), tick('11-0', 'ETH-USD'), tick('12-0', 'BTC-USD')];
const idPoint = (ms: number): ResumePoint => ({ kind: 'id', id: { ms, seq: 0 } });
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('BatchedReads', () => {
  it('reads once per resume point and turn, for the union of the pairs, each waiter getting its own pairs', async () => {
    const read = jest.fn((_point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> => Promise.resolve({ complete: true, ticks: ticks.filter((t) => pairs.has(t.pair)) }));
    const reads = new BatchedReads(read);
    const both = reads.readAfter(idPoint(9), new Set(['BTC-USD', 'ETH-USD']));
    const btc = reads.readAfter(idPoint(9), new Set(['BTC-USD']));
    const other = reads.readAfter({ kind: 'time', ms: 5 }, new Set(['ETH-USD']));
    expect(read).not.toHaveBeenCalled(); // sent once the turn's I/O is done
    const [a, b, c] = await Promise.all([both, btc, other]);
    expect(read).toHaveBeenCalledTimes(2);
    expect(read.mock.calls[0][0]).toEqual(idPoint(9));
    expect([...read.mock.calls[0][1]].sort()).toEqual(['BTC-USD', 'ETH-USD']);
    expect(a).toEqual({ complete: true, ticks });
    expect(b).toEqual({ complete: true, ticks: [ticks[0], ticks[2]] });
    expect(c).toEqual({ complete: true, ticks: [ticks[1]] });
    // The same tick objects: encoded once for every replay (encoded.ts caches per object).
    expect(b.complete && b.ticks[0]).toBe(a.complete && a.ticks[0]);
  });

  it('a read sent serves later joins from the same point for the pairs it covers, until the log commits', async () => {
    const read = jest.fn((_point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> => Promise.resolve({ complete: true, ticks: ticks.filter((t) => pairs.has(t.pair)) }));
    const reads = new BatchedReads(read);
    const first = reads.readAfter(idPoint(9), new Set(['BTC-USD', 'ETH-USD']));
    await turn();
    expect(read).toHaveBeenCalledTimes(1);
    // Later turns, nothing committed: the same read (its pairs cover these), each getting its own pairs.
    const inFlight = reads.readAfter(idPoint(9), new Set(['BTC-USD']));
    await first;
    await turn();
    const done = reads.readAfter(idPoint(9), new Set(['ETH-USD']));
    expect(await inFlight).toEqual({ complete: true, ticks: [ticks[0], ticks[2]] });
    expect(await done).toEqual({ complete: true, ticks: [ticks[1]] });
    expect(read).toHaveBeenCalledTimes(1);
    // Another point, or pairs the read did not cover: read again.
    await reads.readAfter(idPoint(10), new Set(['BTC-USD']));
    await reads.readAfter(idPoint(10), new Set(['BTC-USD', 'ETH-USD']));
    expect(read).toHaveBeenCalledTimes(3);
    // A commit: a tick the old read may lack; the next join reads again.
    reads.committed();
    await reads.readAfter(idPoint(9), new Set(['BTC-USD']));
    expect(read).toHaveBeenCalledTimes(4);
  });

  it('does not reuse a read that failed', async () => {
    const read = jest.fn().mockRejectedValueOnce(new Error('redis down')).mockResolvedValue({ complete: true, ticks: [] });
    const reads = new BatchedReads(read);
    await expect(reads.readAfter(idPoint(9), new Set(['BTC-USD']))).rejects.toThrow('redis down');
    await expect(reads.readAfter(idPoint(9), new Set(['BTC-USD']))).resolves.toEqual({ complete: true, ticks: [] });
    expect(read).toHaveBeenCalledTimes(2);
  });

  it('hands a reset and a failure to every waiter of the read', async () => {
    const reset = { reason: 'history_gap' as const, oldestId: '20-0', oldestTimestamp: '2026-01-01T00:00:00.000Z' };
    const reads = new BatchedReads((point) => (point.kind === 'id' && point.id.ms === 1 ? Promise.resolve({ complete: false, reset }) : Promise.reject(new Error('redis down'))));
    const results = await Promise.allSettled([
      reads.readAfter(idPoint(1), new Set(['BTC-USD', 'ETH-USD'])),
      reads.readAfter(idPoint(1), new Set(['ETH-USD'])),
      reads.readAfter(idPoint(2), new Set(['BTC-USD'])),
      reads.readAfter(idPoint(2), new Set(['ETH-USD'])),
    ]);
    expect(results.slice(0, 2)).toEqual([
      { status: 'fulfilled', value: { complete: false, reset } },
      { status: 'fulfilled', value: { complete: false, reset } },
    ]);
    expect(results.slice(2).map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['redis down', 'redis down']);
  });
});
