import { answers, FakeFeed, FakeSource, INTERVAL_MS, PAIRS, useIngestRig } from '../../test/support/ingest';
import { TickThrottle } from './tick-throttle';

describe(TickThrottle.name, () => {
  const rig = useIngestRig({ PAIRS: 'BTC-USD', POLL_INTERVAL_MS: String(INTERVAL_MS) });

  /** MIN_TICK_INTERVAL_MS=1000 with a shared tick log's round trip: every publish settles 200 ms later. */
  function slowPublish(): FakeFeed {
    const feed = new FakeFeed('kraken');
    rig.build([new FakeSource('kraken', answers(3500))], { PAIRS: PAIRS.join(','), MIN_TICK_INTERVAL_MS: '1000' }, new Map([['kraken', feed]]));
    const publish = rig.log.publish.bind(rig.log);
    // A shared tick log's round trip: the publish settles 200 ms later.
    jest.spyOn(rig.log, 'publish').mockImplementation(async (draft) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return publish(draft);
    });
    return feed;
  }

  it('publishes at most one tick per MIN_TICK_INTERVAL_MS, the latest price when the interval ends', async () => {
    let price = 97000;
    const kraken = new FakeSource('kraken', (pairs) => Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price: price++ })), failed: [] }));
    rig.build([kraken], { MIN_TICK_INTERVAL_MS: '2500' });
    await rig.start(); // t=0: 97000
    await rig.poll(); // t=1000: 97001 waits
    await rig.poll(); // t=2000: 97002 replaces it
    expect(await rig.published()).toEqual([97000]);
    expect(rig.stream.isFresh('BTC-USD')).toBe(true);
    await jest.advanceTimersByTimeAsync(500); // t=2500
    expect(await rig.published()).toEqual([97000, 97002]);
    await jest.advanceTimersByTimeAsync(2499); // t=4999: 97003 (t=3000) and 97004 (t=4000) wait for t=5000
    expect(await rig.published()).toEqual([97000, 97002]);
    await jest.advanceTimersByTimeAsync(1); // t=5000: the latest waiting price (or the poll of t=5000)
    const prices = await rig.published();
    expect(prices).toHaveLength(3);
    expect(prices[2]).toBeGreaterThanOrEqual(97004);
  });

  it('starts MIN_TICK_INTERVAL_MS as a tick is published, not when a slow publish settles', async () => {
    const feed = slowPublish();
    await rig.start();
    await jest.advanceTimersByTimeAsync(1500);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3500);
    feed.trade({ pair: 'ETH-USD', price: 3501, sourceTimestamp: new Date().toISOString() });
    await jest.advanceTimersByTimeAsync(50);
    feed.trade({ pair: 'ETH-USD', price: 3502, sourceTimestamp: new Date().toISOString() }); // while the first one's publish is on its way
    await jest.advanceTimersByTimeAsync(500);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3501);
    await jest.advanceTimersByTimeAsync(800);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3502);
  });

  it('starts MIN_TICK_INTERVAL_MS as a deferred tick goes out too, not when its publish settles', async () => {
    const feed = slowPublish();
    await rig.start();
    await jest.advanceTimersByTimeAsync(1500);
    const at = () => new Date().toISOString();
    feed.trade({ pair: 'ETH-USD', price: 3501, sourceTimestamp: at() }); // out at once: the interval starts
    await jest.advanceTimersByTimeAsync(100);
    feed.trade({ pair: 'ETH-USD', price: 3502, sourceTimestamp: at() }); // deferred to the interval's end
    await jest.advanceTimersByTimeAsync(950);
    // The deferred tick went out 50 ms ago and its publish has not settled: a new interval runs.
    feed.trade({ pair: 'ETH-USD', price: 3503, sourceTimestamp: at() });
    // Had the interval started when that publish settled (200 ms on), 3503 would be out by now.
    await jest.advanceTimersByTimeAsync(450);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3502);
    await jest.advanceTimersByTimeAsync(750);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3503);
  });
});
