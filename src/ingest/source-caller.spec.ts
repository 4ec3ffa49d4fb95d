import { answers, FakeSource, hangsUntilAborted, INTERVAL_MS, PAIRS, START, throws, TIMEOUT_MS, useIngestRig } from '../../test/support/ingest';
import { SourceCaller } from './source-caller';

describe(SourceCaller.name, () => {
  const rig = useIngestRig({ PAIRS: PAIRS.join(','), POLL_INTERVAL_MS: String(INTERVAL_MS), SOURCE_TIMEOUT_MS: String(TIMEOUT_MS), SOURCE_BACKOFF_MAX_MS: '60000' });

  it('tries the first source again once its circuit half-opens and serves from it after it recovers', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.001); // nearly the full backoffs
    const kraken = new FakeSource('kraken', throws('timeout'));
    const coinbase = new FakeSource('coinbase', answers(97100));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(rig.stream.latest('BTC-USD')?.source).toBe('coinbase');

    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // the circuit half-opens after ~1 s: one trial, fails
    expect(kraken.calls).toHaveLength(2);
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'open', consecutiveFailures: 2 });

    kraken.behaviour = answers(97200);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // still open (~2 s backoff)
    expect(kraken.calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // half-open: the trial succeeds
    expect(kraken.calls).toHaveLength(3);
    expect(rig.stream.latest('BTC-USD')).toMatchObject({ price: 97200, source: 'kraken' });
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 0, nextAttemptAt: null });

    const coinbaseCalls = coinbase.calls.length;
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(5);
    expect(coinbase.calls).toHaveLength(coinbaseCalls);
  });

  it('sends a half-open non-batching source a single-pair trial', async () => {
    const coinbase = new FakeSource('coinbase', throws('network'), false);
    const simulated = new FakeSource('simulated', answers(1));
    rig.build([coinbase, simulated]);
    await rig.start();
    expect(coinbase.calls).toEqual([PAIRS]);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(coinbase.calls).toEqual([PAIRS, ['BTC-USD']]);
  });

  it('asks a failing source only a few times a minute while the next one serves', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(1 - Number.EPSILON); // the shortest backoffs the jitter allows
    const kraken = new FakeSource('kraken', throws('http_status'));
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(coinbase.calls).toHaveLength(61);
    expect(kraken.calls.length).toBeLessThanOrEqual(8);
    expect(kraken.calls.length).toBeGreaterThanOrEqual(5);
  });

  it('waits at least Retry-After before asking a rate-limited source again', async () => {
    const kraken = new FakeSource('kraken', throws('rate_limited', 30_000));
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    await jest.advanceTimersByTimeAsync(29_000);
    expect(kraken.calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1000);
    expect(kraken.calls).toHaveLength(2);
  });

  it('aborts the request of a source that overruns its deadline', async () => {
    const kraken = new FakeSource('kraken', hangsUntilAborted);
    rig.build([kraken]);
    await rig.start();
    await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1000);
    expect(kraken.signals[0].aborted).toBe(true);
    expect(rig.poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: { kind: 'timeout' } });
  });

  it('reports each source circuit in PRICE_SOURCES order', async () => {
    rig.build([new FakeSource('coingecko', throws('bad_json')), new FakeSource('simulated', answers(1))]);
    await rig.start();
    expect(rig.poller.sourceCircuits()).toEqual([
      expect.objectContaining({ source: 'coingecko', state: 'open', consecutiveFailures: 1, lastError: expect.objectContaining({ kind: 'bad_json' }) }),
      expect.objectContaining({ source: 'simulated', state: 'closed', consecutiveFailures: 0, lastSuccessAt: new Date(START).toISOString() }),
    ]);
  });
});
