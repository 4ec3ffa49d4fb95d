import { StaleWatch } from './stale-watch';
import { flush, hubSetup } from './stream.testing';

/** STALE_AFTER_MS=1000 on a clock the test moves. */
function setup() {
  let now = Date.parse('2026-12-06T12:00:00.000Z');
  const clock = () => now;
  const h = hubSetup({ STALE_AFTER_MS: '1000' }, clock);
  const watch = new StaleWatch(h.stream, h.hub, h.config);
  const at = (ms: number) => {
    now += ms;
    watch.check(now);
  };
  return { ...h, watch, at, clock };
}

describe(StaleWatch.name, () => {
  it('tells every subscriber of a pair when its price goes stale and when a fresh one comes back', async () => {
    const { publish, open, at, clock } = setup();
    const first = await publish('BTC-USD');
    await publish('ETH-USD');
    const { sink } = open(['BTC-USD', 'ETH-USD']);
    await flush();
    at(900);
    expect(sink.statuses()).toEqual([]);
    // ETH keeps being confirmed; BTC's sources are silent.
    await publish('ETH-USD');
    at(200);
    expect(sink.statuses()).toEqual([{ pair: 'BTC-USD', state: 'stale', since: first!.timestamp }]);
    // Said once, not on every check.
    at(300);
    expect(sink.statuses()).toHaveLength(1);
    const back = await publish('BTC-USD');
    at(10);
    expect(sink.statuses()).toEqual([
      { pair: 'BTC-USD', state: 'stale', since: first!.timestamp },
      { pair: 'BTC-USD', state: 'fresh', since: new Date(clock() - 10).toISOString() },
    ]);
    // The status never takes a tick's place: the ticks are all there, in order.
    expect(sink.ticks().at(-1)?.id).toBe(back!.id);
  });

  it('gives a subscriber that joins (or resumes) while a pair is stale its status at once, after its latest price', async () => {
    const { publish, open, at } = setup();
    const btc = await publish('BTC-USD');
    at(1500);
    const late = open(['BTC-USD']);
    await flush();
    expect(late.sink.messages.map((m) => m.type)).toEqual(['price', 'status']);
    expect(late.sink.statuses()).toEqual([{ pair: 'BTC-USD', state: 'stale', since: btc!.timestamp }]);
    // Another pair, fresh, says nothing.
    await publish('ETH-USD');
    const other = open(['ETH-USD']);
    await flush();
    expect(other.sink.statuses()).toEqual([]);
  });

  it('says nothing for a pair that never had a price', async () => {
    const { open, at } = setup();
    const { sink } = open(['SOL-USD']);
    at(5000);
    await flush();
    expect(sink.statuses()).toEqual([]);
  });
});
