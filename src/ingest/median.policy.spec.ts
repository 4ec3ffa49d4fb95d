import { answers, FakeSource, INTERVAL_MS, START, useIngestRig } from '../../test/support/ingest';
import { MedianPolicy } from './median.policy';

describe(MedianPolicy.name, () => {
  const rig = useIngestRig({ PAIRS: 'BTC-USD', PRICE_MODE: 'median', POLL_INTERVAL_MS: String(INTERVAL_MS), MAX_DEVIATION_PCT: '3' });

  it('publishes the median of every source as a composite tick listing them', async () => {
    const sources = [new FakeSource('kraken', answers(97000)), new FakeSource('coinbase', answers(97200)), new FakeSource('coingecko', answers(97100))];
    rig.build(sources);
    await rig.start();
    expect(sources.map((s) => s.calls.length)).toEqual([1, 1, 1]);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'composite', sources: ['kraken', 'coinbase', 'coingecko'] });
    expect(rig.stream.latest('BTC-USD')?.bid).toBeUndefined();
  });

  it('leaves out a source further than MAX_DEVIATION_PCT from the median of the others, counts it and backs it off', async () => {
    rig.build([new FakeSource('kraken', answers(48500)), new FakeSource('coinbase', answers(97200)), new FakeSource('coingecko', answers(97000))]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'composite', sources: ['coinbase', 'coingecko'] });
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ source: 'kraken', state: 'open' });
    const { values } = await rig.metrics.pricesRejected.get();
    expect(values).toContainEqual(expect.objectContaining({ labels: { source: 'kraken', reason: 'deviation' }, value: 1 }));
  });

  it('keeps the one of two disagreeing sources that stays near the last price, and publishes nothing when there is none', async () => {
    const kraken = new FakeSource('kraken', answers(48500));
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toBeUndefined(); // no last price to tell which is right

    kraken.behaviour = answers(97050);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97025, sources: ['kraken', 'coinbase'] });
    kraken.behaviour = answers(48500);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97000, sources: ['coinbase'] });
  });

  it('leaves out a stale source and the composite carries the oldest upstream time of its parts', async () => {
    const fresh = new Date(START - 5000).toISOString();
    rig.build([new FakeSource('coingecko', answers(97000, new Date(START - 3_600_000).toISOString())), new FakeSource('coindesk', answers(97100, fresh)), new FakeSource('kraken', answers(97200))]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97150, sources: ['coindesk', 'kraken'], sourceTimestamp: fresh });
  });
});
