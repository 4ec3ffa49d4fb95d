import type { Tick } from '../shared/wire';
import { Subscriber } from './subscriber';
import { flush, hubSetup, idResume } from './stream.testing';

describe(Subscriber.name, () => {
  it('cuts a subscriber whose live backlog passes CLIENT_BUFFER_SIZE, and only then', async () => {
    const { publish, open, released, hub } = hubSetup({ CLIENT_BUFFER_SIZE: '5' });
    const { sink } = open(['BTC-USD']);
    await flush();
    sink.accepting = false;
    await publish('BTC-USD'); // handed over; the sink now says it is full
    for (let i = 0; i < 5; i++) await publish('BTC-USD');
    expect(sink.ended).toEqual([]);
    await publish('BTC-USD'); // the sixth held message
    expect(sink.ended).toEqual(['slow']);
    expect(released).toEqual(['slow']);
    expect(hub.size).toBe(0);
  });

  it('replays the whole window to a subscriber that drains slowly, however far past CLIENT_BUFFER_SIZE, without cutting it', async () => {
    const { publish, open } = hubSetup({ CLIENT_BUFFER_SIZE: '5', HISTORY_SIZE: '500' });
    const first = await publish('BTC-USD');
    const missed: Tick[] = [];
    for (let i = 0; i < 499; i++) missed.push((await publish('BTC-USD'))!);
    const { sink } = open(['BTC-USD'], idResume(first!.id));
    sink.accepting = false;
    await flush();
    expect(sink.messages).toHaveLength(1); // one written, then the sink said it was full
    const live = [await publish('BTC-USD'), await publish('BTC-USD')];
    for (let i = 0; i < 1000 && sink.messages.length < 501; i++) {
      sink.drain();
      sink.accepting = false;
    }
    sink.drain();
    expect(sink.ended).toEqual([]);
    expect(sink.ids()).toEqual([...missed, ...live].map((t) => t!.id));
  });

  it("counts a resume's replayed ticks as sent but not as delivery lag; a live tick from the backlog counts with its lag", async () => {
    const { publish, open, metrics } = hubSetup({ HISTORY_SIZE: '50' });
    const sentSse = async () => (await metrics.messagesSent.get()).values.find((v) => v.labels.transport === 'sse')?.value ?? 0;
    const lagCount = async () => (await metrics.deliveryLag.get()).values.find((v) => v.metricName === 'price_stream_delivery_lag_seconds_count' && v.labels.transport === 'sse')?.value ?? 0;
    const first = await publish('BTC-USD');
    for (let i = 0; i < 20; i++) await publish('BTC-USD');
    const { sink } = open(['BTC-USD'], idResume(first!.id));
    await flush();
    expect(sink.ids()).toHaveLength(20);
    expect({ sent: await sentSse(), lag: await lagCount() }).toEqual({ sent: 20, lag: 0 });

    await publish('BTC-USD'); // live, written at once: the hub counts it, with its lag
    expect({ sent: await sentSse(), lag: await lagCount() }).toEqual({ sent: 21, lag: 1 });

    sink.accepting = false;
    await publish('BTC-USD'); // handed over; the sink is now full
    await publish('BTC-USD'); // waits in the backlog
    sink.drain();
    expect(sink.ids()).toHaveLength(23);
    expect({ sent: await sentSse(), lag: await lagCount() }).toEqual({ sent: 23, lag: 3 });
  });

  it('conflates at conflate=<ms>: at most one tick per pair per interval, always the latest, saying how many it replaces', async () => {
    jest.useFakeTimers({ now: 1_900_000_000_000 });
    try {
      const { publish, open } = hubSetup();
      const { sink } = open(['BTC-USD', 'ETH-USD'], undefined, 1000);
      await Promise.resolve();
      await Promise.resolve();
      const sent: Tick[] = [];
      for (let i = 0; i < 30; i++) {
        sent.push((await publish('BTC-USD'))!);
        sent.push((await publish('ETH-USD'))!);
        jest.advanceTimersByTime(100);
      }
      jest.advanceTimersByTime(1000);
      const got = sink.messages.flatMap((m) => (m.type === 'price' ? [m] : []));
      for (const pair of ['BTC-USD', 'ETH-USD']) {
        const mine = got.filter((m) => m.tick.pair === pair);
        // 3 s of ticks at 10/s: the first at once, then one per second.
        expect(mine.length).toBeGreaterThanOrEqual(3);
        expect(mine.length).toBeLessThanOrEqual(4);
        const ofPair = sent.filter((t) => t.pair === pair);
        expect(mine[mine.length - 1].tick.id).toBe(ofPair[ofPair.length - 1].id);
        // Every tick is accounted for: delivered or counted as skipped.
        expect(mine.reduce((n, m) => n + 1 + m.skipped, 0)).toBe(ofPair.length);
      }
    } finally {
      jest.useRealTimers();
    }
  });

  it('catches a conflating subscriber up with the latest tick per pair from the window', async () => {
    const { publish, open } = hubSetup();
    const seen = await publish('BTC-USD');
    for (let i = 0; i < 4; i++) await publish('BTC-USD');
    const last = await publish('BTC-USD');
    const { sink } = open(['BTC-USD'], idResume(seen!.id), 500);
    await flush();
    expect(sink.messages).toEqual([{ type: 'price', tick: last, skipped: 4 }]);
  });

  it('switches a slow subscriber to conflated delivery under CONFLATE_SLOW_MS, then back to every tick once it drains', async () => {
    const { publish, open, metrics } = hubSetup({ CLIENT_BUFFER_SIZE: '3', CONFLATE_SLOW_MS: '50' });
    const slowSpy = jest.spyOn(metrics, 'slow');
    const { sink } = open(['BTC-USD', 'ETH-USD']);
    await flush();
    sink.accepting = false;
    await publish('BTC-USD');
    const ticks: Tick[] = [];
    for (let i = 0; i < 20; i++) ticks.push((await publish(i % 2 ? 'ETH-USD' : 'BTC-USD'))!);
    expect(sink.ended).toEqual([]);
    expect(slowSpy).toHaveBeenCalledWith('sse', 'conflated');
    const before = sink.messages.length;
    sink.drain();
    const caughtUp = sink.messages.slice(before).flatMap((m) => (m.type === 'price' ? [m] : []));
    // The latest of each pair, each saying how many it replaces.
    expect(caughtUp.map((m) => m.tick.id)).toEqual([ticks[18].id, ticks[19].id]);
    expect(caughtUp.every((m) => m.skipped > 0)).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    const next = await publish('BTC-USD');
    expect(sink.messages[sink.messages.length - 1]).toMatchObject({ tick: next, skipped: 0 });
  });

  it('cuts a conflated subscriber that does not drain for CLIENT_BUFFER_SIZE intervals', async () => {
    const { publish, open } = hubSetup({ CLIENT_BUFFER_SIZE: '3', CONFLATE_SLOW_MS: '10' });
    const { sink } = open(['BTC-USD']);
    await flush();
    sink.accepting = false;
    for (let i = 0; i < 10; i++) await publish('BTC-USD');
    expect(sink.ended).toEqual([]);
    for (let i = 0; i < 20 && sink.ended.length === 0; i++) await new Promise((r) => setTimeout(r, 15));
    expect(sink.ended).toEqual(['slow']);
  });
});
