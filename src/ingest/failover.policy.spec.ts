import { answers, FakeSource, INTERVAL_MS, PAIRS, START, throws, TIMEOUT_MS, useIngestRig } from '../../test/support/ingest';
import { SourceError } from '../sources/price-source';
import { FailoverPolicy } from './failover.policy';

describe(FailoverPolicy.name, () => {
  const rig = useIngestRig({ PAIRS: PAIRS.join(','), POLL_INTERVAL_MS: String(INTERVAL_MS), SOURCE_TIMEOUT_MS: String(TIMEOUT_MS), SOURCE_BACKOFF_MAX_MS: '60000' });

  it('publishes the first source prices with the retrieval time, sourceTimestamp and source when it answers', async () => {
    const kraken = new FakeSource('kraken', answers(97000, '2026-11-21T20:59:59.000Z'));
    const coinbase = new FakeSource('coinbase', answers(1));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toMatchObject({
      pair: 'BTC-USD',
      price: 97000,
      source: 'kraken',
      timestamp: new Date(START).toISOString(),
      sourceTimestamp: '2026-11-21T20:59:59.000Z',
    });
    expect(kraken.calls).toEqual([PAIRS]);
    expect(coinbase.calls).toEqual([]);
  });

  it('fails over to the next source within the same poll when the first one fails', async () => {
    const kraken = new FakeSource('kraken', throws('http_status'));
    const coinbase = new FakeSource('coinbase', answers(97100));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(kraken.calls).toHaveLength(1);
    expect(coinbase.calls).toEqual([PAIRS]);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'coinbase' });
    expect(rig.poller.sourceCircuits().map((c) => [c.source, c.state])).toEqual([
      ['kraken', 'open'],
      ['coinbase', 'closed'],
    ]);
  });

  it('asks the next source only for the pairs the first could not price, without opening the first circuit', async () => {
    const kraken = new FakeSource('kraken', (pairs) =>
      Promise.resolve({
        quotes: [{ pair: 'BTC-USD', price: 97000 }],
        failed: pairs.filter((p) => p !== 'BTC-USD').map((pair) => ({ pair, error: new SourceError('kraken', 'bad_price', 'NaN') })),
      }),
    );
    const coinbase = new FakeSource('coinbase', answers(3500));
    rig.build([kraken, coinbase]);
    await rig.start();
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(coinbase.calls).toEqual([['ETH-USD'], ['ETH-USD'], ['ETH-USD']]);
    expect(kraken.calls).toHaveLength(3);
    expect(rig.stream.latest('ETH-USD')?.source).toBe('coinbase');
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });

  it('skips a source for the pairs it does not support', async () => {
    const coingecko = new FakeSource('coingecko', answers(97000));
    coingecko.unsupported.add('ETH-USD');
    const coinbase = new FakeSource('coinbase', answers(3500));
    rig.build([coingecko, coinbase]);
    await rig.start();
    expect(coingecko.calls).toEqual([['BTC-USD']]);
    expect(coinbase.calls).toEqual([['ETH-USD']]);
  });

  it('drops a price that is not finite and > 0 even when a source returns one', async () => {
    const kraken = new FakeSource('kraken', answers(Number.NaN));
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97000, source: 'coinbase' });
  });
});

describe(`${FailoverPolicy.name} price checks`, () => {
  const rig = useIngestRig({ PAIRS: 'BTC-USD', POLL_INTERVAL_MS: String(INTERVAL_MS), SOURCE_TIMEOUT_MS: String(TIMEOUT_MS), SOURCE_BACKOFF_MAX_MS: '60000' });

  it.each([[1e308], [1e-300], [Number.NaN]])('never publishes %p and asks the next source in the same poll', async (price) => {
    const kraken = new FakeSource('kraken', answers(price));
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(await rig.published()).toEqual([97000]);
    expect(rig.stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(await rig.counted('pricesRejected', { source: 'kraken', reason: 'implausible' })).toBe(1);
  });

  it('backs a source off like a failed request when it answers no usable price, at most a few requests a minute', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(1 - Number.EPSILON); // the shortest backoffs the jitter allows
    const kraken = new FakeSource('kraken', answers(Number.NaN));
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'implausible' }) });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(coinbase.calls).toHaveLength(61);
    expect(kraken.calls.length).toBeLessThanOrEqual(8);
  });

  it('opens the circuit of a source whose answer has only bad_price failures', async () => {
    const kraken = new FakeSource('kraken', (pairs) => Promise.resolve({ quotes: [], failed: pairs.map((pair) => ({ pair, error: new SourceError('kraken', 'bad_price', 'NaN') })) }));
    rig.build([kraken, new FakeSource('coinbase', answers(97000))]);
    await rig.start();
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'bad_price' }) });
  });

  it('treats a price stamped older than STALE_AFTER_MS by its upstream as no price: the next source serves and the pair is not confirmed', async () => {
    const twoHoursAgo = new Date(START - 2 * 3_600_000).toISOString();
    const coingecko = new FakeSource('coingecko', answers(97000, twoHoursAgo));
    const coinbase = new FakeSource('coinbase', throws('http_status'));
    rig.build([coingecko, coinbase], { STALE_AFTER_MS: '30000' });
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toBeUndefined();
    expect(rig.stream.isFresh('BTC-USD')).toBe(false);
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'stale' }) });
    expect(await rig.counted('pricesRejected', { source: 'coingecko', reason: 'stale' })).toBe(1);

    coinbase.behaviour = answers(97100);
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'coinbase' });
  });

  it('holds a jump back and publishes it when a second source confirms it in the same poll', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    const coinbase = new FakeSource('coinbase', answers(60000));
    rig.build([kraken, coinbase]);
    await rig.start();
    kraken.behaviour = answers(60100);
    await rig.poll();
    expect(coinbase.calls).toEqual([['BTC-USD']]);
    expect(await rig.published()).toEqual([97000, 60100]);
    expect(rig.stream.latest('BTC-USD')?.source).toBe('kraken');
    expect(await rig.counted('priceJumps', { source: 'kraken', outcome: 'held' })).toBe(1);
    expect(await rig.counted('priceJumps', { source: 'kraken', outcome: 'confirmed' })).toBe(1);
  });

  it('drops a jump another source contradicts, publishes that source and backs the jumping one off', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    const coinbase = new FakeSource('coinbase', answers(97010));
    rig.build([kraken, coinbase]);
    await rig.start();
    kraken.behaviour = answers(48500); // 50 % off
    await rig.poll();
    expect(await rig.published()).toEqual([97000, 97010]);
    expect(rig.stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'implausible' }) });
    expect(await rig.counted('priceJumps', { source: 'kraken', outcome: 'rejected' })).toBe(1);
    expect(rig.warnings()).toContain('price jump contradicted by another source; dropped');
  });

  it('publishes a jump no other source can check only after JUMP_CONFIRMATIONS answers in a row', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    rig.build([kraken], { JUMP_CONFIRMATIONS: '3' });
    await rig.start();
    kraken.behaviour = answers(48500);
    await rig.poll();
    await rig.poll();
    expect(await rig.published()).toEqual([97000]);
    expect(rig.poller.sourceCircuits()[0].state).toBe('closed');
    await rig.poll();
    expect(await rig.published()).toEqual([97000, 48500]);
    expect(await rig.counted('priceJumps', { source: 'kraken', outcome: 'held' })).toBe(2);
    expect(await rig.counted('priceJumps', { source: 'kraken', outcome: 'accepted' })).toBe(1);
  });

  it('starts the count over when a price within MAX_JUMP_PCT comes between two jumps', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    rig.build([kraken], { JUMP_CONFIRMATIONS: '2' });
    await rig.start();
    kraken.behaviour = answers(48500);
    await rig.poll();
    kraken.behaviour = answers(97001);
    await rig.poll();
    kraken.behaviour = answers(48500);
    await rig.poll();
    expect(await rig.published()).toEqual([97000, 97001]);
  });

  it('puts the ticker fields of the quote on the tick', async () => {
    const ticker = { bid: 96999, ask: 97001, open24h: 95000, high24h: 98000, low24h: 94000, volume24h: 1234.5 };
    rig.build([new FakeSource('kraken', (pairs) => Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price: 97000, ...ticker })), failed: [] }))]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97000, source: 'kraken', ...ticker });
  });
});
