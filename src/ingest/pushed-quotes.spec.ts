import { answers, FakeFeed, FakeSource, INTERVAL_MS, PAIRS, START, useIngestRig } from '../../test/support/ingest';
import { FailoverPolicy } from './failover.policy';

describe(`${FailoverPolicy.name} with a push feed`, () => {
  const rig = useIngestRig({ PAIRS: PAIRS.join(','), POLL_INTERVAL_MS: String(INTERVAL_MS) });
  let feed: FakeFeed;
  let kraken: FakeSource;
  const fresh = new Date(START - 1000).toISOString();

  beforeEach(() => {
    feed = new FakeFeed('kraken');
    kraken = new FakeSource('kraken', answers(3500));
    rig.build([kraken], {}, new Map([['kraken', feed]]));
  });

  it('takes the pairs the feed serves from it and asks REST for the others in the same poll', async () => {
    feed.serving.set('BTC-USD', { pair: 'BTC-USD', price: 97100, sourceTimestamp: fresh, bid: 97099 });
    await rig.start();
    expect(feed.running).toBe(true);
    expect(kraken.calls).toEqual([['ETH-USD']]);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'kraken', sourceTimestamp: fresh, bid: 97099 });
    expect(rig.stream.latest('ETH-USD')).toMatchObject({ price: 3500, source: 'kraken' });
  });

  it('asks REST for a pair whose pushed price is stale by the exchange time', async () => {
    feed.serving.set('BTC-USD', { pair: 'BTC-USD', price: 97100, sourceTimestamp: new Date(START - 3_600_000).toISOString() });
    await rig.start();
    expect(kraken.calls).toEqual([PAIRS]);
  });

  it('publishes a pushed trade at once, but not a jump, and nothing while disabled (not the leader)', async () => {
    await rig.start();
    feed.trade({ pair: 'ETH-USD', price: 3501, sourceTimestamp: fresh });
    await jest.advanceTimersByTimeAsync(0);
    expect(rig.stream.latest('ETH-USD')).toMatchObject({ price: 3501, source: 'kraken' });

    feed.serving.clear();
    feed.push({ pair: 'ETH-USD', price: 1750, sourceTimestamp: fresh }); // 50 % off: left for the poll
    await jest.advanceTimersByTimeAsync(0);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3501);

    rig.poller.setEnabled(false);
    expect(feed.running).toBe(false);
    feed.push({ pair: 'ETH-USD', price: 3502, sourceTimestamp: fresh }); // a late one, after the feed stopped
    await jest.advanceTimersByTimeAsync(0);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3501);
    rig.poller.setEnabled(true);
    expect(feed.running).toBe(true);
  });

  it('takes no pushed quote in PRICE_MODE=median: the composite is made at each poll', async () => {
    rig.build([kraken], { PRICE_MODE: 'median' }, new Map([['kraken', feed]]));
    await rig.start();
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3500);
    feed.push({ pair: 'ETH-USD', price: 3501, sourceTimestamp: fresh });
    await jest.advanceTimersByTimeAsync(0);
    expect(rig.stream.latest('ETH-USD')?.price).toBe(3500);
  });
});
