import { applyDelta } from '../shared/tick-delta';
import type { ResetEvent, Tick } from '../shared/wire';
import { DeltaTracker } from './delta-tracker';
import { deltaMessage, linkPrevious } from './encoded';
import type { StreamMessage } from './sink';
import { flush, hubSetup, idResume, type RecordingSink } from './stream.testing';

/** What a delta subscriber's client makes of its messages: deltas applied to the pair's last tick. */
function reconstructed(sink: RecordingSink): Tick[] {
  const last = new Map<string, Tick>();
  const out: Tick[] = [];
  for (const m of sink.messages) {
    if (m.type === 'reset') last.clear();
    if (m.type !== 'price' && m.type !== 'delta') continue;
    let tick: Tick | null;
    if (m.type === 'price') tick = m.skipped === 0 ? m.tick : { ...m.tick, skipped: m.skipped };
    else {
      const base = last.get(m.tick.pair);
      expect(base?.id).toBe(m.baseId);
      tick = applyDelta(base!, m.tick.id, m.delta);
    }
    last.set(tick!.pair, tick!);
    out.push(tick!);
  }
  return out;
}

const kinds = (sink: RecordingSink) => sink.messages.map((m) => m.type);

describe(DeltaTracker.name, () => {
  it('gives a delta subscriber the first tick of each pair in full, then deltas (one object per tick, shared) that rebuild exactly what a full subscriber gets', async () => {
    const { publish, open } = hubSetup();
    const full = open(['BTC-USD', 'ETH-USD']);
    const delta = open(['BTC-USD', 'ETH-USD']);
    const other = open(['BTC-USD']);
    delta.sub.useDeltas(true);
    other.sub.useDeltas(true);
    await flush();
    for (let i = 0; i < 10; i++) {
      await publish('BTC-USD');
      await publish('ETH-USD');
    }
    // The first tick of each pair has no previous one: in full.
    expect(kinds(delta.sink)).toEqual(['price', 'price', ...new Array<string>(18).fill('delta')]);
    expect(reconstructed(delta.sink)).toEqual(full.sink.ticks());
    expect(full.sink.messages.every((m) => m.type === 'price')).toBe(true);
    expect(other.sink.messages.at(-1)).toBe(delta.sink.messages.at(-2));
  });

  it('stays in sequence through a sink that stopped reading and drained (the queue is written in deltas too)', async () => {
    const { publish, open } = hubSetup({ CLIENT_BUFFER_SIZE: '50' });
    const full = open(['BTC-USD']);
    const delta = open(['BTC-USD']);
    delta.sub.useDeltas(true);
    await flush();
    await publish('BTC-USD');
    delta.sink.accepting = false;
    for (let i = 0; i < 10; i++) await publish('BTC-USD');
    delta.sink.drain();
    expect(kinds(delta.sink).filter((k) => k === 'delta')).toHaveLength(10);
    expect(reconstructed(delta.sink)).toEqual(full.sink.ticks());
  });

  it('replays a resume with the first tick of each pair in full, then deltas', async () => {
    const { publish, open } = hubSetup();
    // The hub diffs a tick against its previous one as it fans it out, while some subscriber asked for deltas.
    const watcher = open(['BTC-USD', 'ETH-USD']);
    watcher.sub.useDeltas(true);
    await flush();
    const from = await publish('BTC-USD');
    for (let i = 0; i < 5; i++) {
      await publish('BTC-USD');
      await publish('ETH-USD');
    }
    const full = open(['BTC-USD', 'ETH-USD'], idResume(from!.id));
    const delta = open(['BTC-USD', 'ETH-USD'], idResume(from!.id));
    delta.sub.useDeltas(true);
    await flush();
    await publish('ETH-USD');
    expect(kinds(delta.sink)).toEqual(['price', 'price', 'delta', 'delta', 'delta', 'delta', 'delta', 'delta', 'delta', 'delta', 'delta']);
    expect(reconstructed(delta.sink)).toEqual(full.sink.ticks());
    expect(reconstructed(watcher.sink)).toHaveLength(12);
  });

  it('diffs no tick while no subscriber asks for deltas (ticks of then come in full)', async () => {
    const { publish, open, hub } = hubSetup();
    const full = open(['BTC-USD']);
    await flush();
    const ticks = [await publish('BTC-USD'), await publish('BTC-USD')];
    expect(ticks.map((t) => deltaMessage(t!))).toEqual([undefined, undefined]);
    const delta = open(['BTC-USD']);
    delta.sub.useDeltas(true);
    await flush();
    expect(hub.deltaUsers).toBe(1);
    await publish('BTC-USD');
    expect(kinds(delta.sink)).toEqual(['price', 'delta']);
    delta.sink.subscriber.closed();
    expect(hub.deltaUsers).toBe(0);
    expect(full.sink.ticks()).toHaveLength(3);
  });

  it('sends a conflated tick that replaces others in full, with its skipped count, and deltas only between ticks in sequence', async () => {
    jest.useFakeTimers({ now: 1_900_000_000_000 });
    try {
      const { publish, open } = hubSetup();
      const delta = open(['BTC-USD'], undefined, 1000);
      delta.sub.useDeltas(true);
      await Promise.resolve();
      await Promise.resolve();
      for (let i = 0; i < 20; i++) {
        await publish('BTC-USD');
        jest.advanceTimersByTime(100);
      }
      jest.advanceTimersByTime(1000);
      const prices = delta.sink.messages.filter((m) => m.type === 'price');
      expect(prices.length).toBeGreaterThanOrEqual(2);
      expect(prices.slice(1).every((m) => m.skipped > 0)).toBe(true);
      reconstructed(delta.sink); // every delta's base is the tick before it
    } finally {
      jest.useRealTimers();
    }
  });

  it('starts afresh after a reset: the next tick of each pair in full', async () => {
    const { publish, open, log } = hubSetup();
    const delta = open(['BTC-USD']);
    delta.sub.useDeltas(true);
    await flush();
    await publish('BTC-USD');
    await publish('BTC-USD');
    const reset: ResetEvent = { reason: 'history_gap', oldestId: null, oldestTimestamp: null };
    log.gap.next(reset);
    await publish('BTC-USD');
    await publish('BTC-USD');
    expect(kinds(delta.sink)).toEqual(['price', 'delta', 'reset', 'price', 'delta']);
  });

  it('starts a pair left and joined again in full, and full ticks again once deltas are switched off', async () => {
    const { publish, open } = hubSetup();
    await publish('BTC-USD');
    const delta = open(['BTC-USD']);
    delta.sub.useDeltas(true);
    await flush();
    await publish('BTC-USD');
    delta.sub.unsubscribe(['BTC-USD']);
    delta.sub.subscribe(['BTC-USD'], undefined, undefined);
    await flush();
    await publish('BTC-USD');
    delta.sub.useDeltas(false);
    await publish('BTC-USD');
    expect(kinds(delta.sink)).toEqual(['price', 'delta', 'price', 'delta', 'price']);
  });

  it('writes the full tick when it has no delta for it or the delta is based on another tick than the last written', () => {
    const tracker = new DeltaTracker();
    const tick = (id: string): Tick => ({ id, pair: 'BTC-USD', price: 1, timestamp: '2026-12-06T11:00:00.000Z', source: 'simulated' });
    const price = (t: Tick): StreamMessage => ({ type: 'price', tick: t, skipped: 0 });
    const [t1, t2, t3, t4, t5] = ['1-0', '2-0', '3-0', '4-0', '5-0'].map(tick);
    expect(tracker.outgoing(price(t1)).type).toBe('price');
    expect(tracker.outgoing(price(t2)).type).toBe('price'); // never linked to its previous tick
    linkPrevious(t3, t2);
    expect(tracker.outgoing(price(t3))).toBe(deltaMessage(t3));
    linkPrevious(t5, t4);
    expect(tracker.outgoing(price(t5)).type).toBe('price'); // based on 4-0, but 3-0 was the last written
  });
});
