import { answers, FakeSource, hangsForever, hangsUntilAborted, INTERVAL_MS, PAIRS, throws, TIMEOUT_MS, useIngestRig } from '../../test/support/ingest';
import type { SourceResult } from '../sources/price-source';
import { PricePollerService } from './price-poller.service';

describe(PricePollerService.name, () => {
  const rig = useIngestRig({ PAIRS: PAIRS.join(','), POLL_INTERVAL_MS: String(INTERVAL_MS), SOURCE_TIMEOUT_MS: String(TIMEOUT_MS), SOURCE_BACKOFF_MAX_MS: '60000' });

  it('polls again every POLL_INTERVAL_MS', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    rig.build([kraken]);
    await rig.start();
    await jest.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(4);
    expect(rig.poller.stats()).toEqual({ polls: 4, overruns: 0 });
  });

  it('skips and counts a poll that would start while the previous one still runs, with no second request', async () => {
    const kraken = new FakeSource('kraken', hangsForever);
    const coinbase = new FakeSource('coinbase', answers(97000));
    rig.build([kraken, coinbase]);
    await rig.start();
    expect(kraken.calls).toHaveLength(1);

    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // the first poll still waits on kraken
    expect(rig.poller.stats()).toEqual({ polls: 1, overruns: 1 });
    expect(coinbase.calls).toHaveLength(0);

    await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1000 - INTERVAL_MS); // the poll's deadline passes
    expect(coinbase.calls).toHaveLength(1);
    expect(rig.stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(rig.poller.sourceCircuits()[0].lastError?.kind).toBe('timeout');

    // kraken's request never settles: its pairs stay in flight, so it is not asked again.
    await jest.advanceTimersByTimeAsync(30_000);
    expect(kraken.calls).toHaveLength(1);
    expect(coinbase.calls.length).toBeGreaterThan(25);
  });

  it('logs one warning naming the offline command when no source answers, and again only after a recovery', async () => {
    const kraken = new FakeSource('kraken', throws('network'));
    const coinbase = new FakeSource('coinbase', throws('timeout'));
    rig.build([kraken, coinbase]);
    await rig.start();
    await jest.advanceTimersByTimeAsync(20 * INTERVAL_MS);
    expect(rig.warnings()).toHaveLength(1);
    expect(rig.warnings()[0]).toMatch(/unreachable.*PRICE_SOURCES=simulated npm start/);

    coinbase.behaviour = answers(97000);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(rig.stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(rig.logs.log.mock.calls.some((c: unknown[]) => (c[0] as { msg: string }).msg === 'prices are flowing again')).toBe(true);
    expect(rig.warnings()).toHaveLength(1);

    coinbase.behaviour = throws('http_status');
    await jest.advanceTimersByTimeAsync(20 * INTERVAL_MS);
    expect(rig.warnings()).toHaveLength(2);
  });

  it('polls the given pairs at once when refresh is called', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    rig.build([kraken]);
    await rig.start();
    const report = await rig.poller.refresh(['ETH-USD', 'DOGE-USD']);
    expect(kraken.calls).toEqual([PAIRS, ['ETH-USD']]);
    expect(report).toEqual({ ran: true, priced: [{ pair: 'ETH-USD', source: 'kraken' }], unpriced: [] });
  });

  it('answers refresh with the running poll instead of starting another', async () => {
    let release: (r: SourceResult) => void = () => undefined;
    const kraken = new FakeSource('kraken', () => new Promise<SourceResult>((resolve) => (release = resolve)));
    rig.build([kraken]);
    await rig.start();
    const refreshed = rig.poller.refresh();
    release({ quotes: [{ pair: 'BTC-USD', price: 97000 }], failed: [] });
    await expect(refreshed).resolves.toMatchObject({ ran: true, priced: [{ pair: 'BTC-USD', source: 'kraken' }], unpriced: ['ETH-USD'] });
    expect(kraken.calls).toHaveLength(1);
  });

  it('does not poll while disabled and polls at once when enabled again', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    rig.build([kraken]);
    rig.poller.setEnabled(false); // as a leader election would, before start-up
    await rig.start();
    await jest.advanceTimersByTimeAsync(5 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(0);
    await expect(rig.poller.refresh()).resolves.toMatchObject({ ran: false });

    rig.poller.setEnabled(true);
    await jest.advanceTimersByTimeAsync(0);
    expect(kraken.calls).toHaveLength(1);
  });

  it('cancels the request in flight when disabled', async () => {
    const kraken = new FakeSource('kraken', hangsUntilAborted);
    rig.build([kraken]);
    await rig.start();
    rig.poller.setEnabled(false);
    await jest.advanceTimersByTimeAsync(0);
    expect(kraken.signals[0].aborted).toBe(true);
    expect(rig.poller.sourceCircuits()[0].state).toBe('closed');
  });

  it('stops the interval and aborts the request in flight on shutdown', async () => {
    const kraken = new FakeSource('kraken', hangsUntilAborted);
    rig.build([kraken]);
    await rig.start();
    expect(rig.scheduler.getIntervals()).toEqual([PricePollerService.INTERVAL_NAME]);

    await rig.poller.beforeApplicationShutdown();
    expect(kraken.signals[0].aborted).toBe(true);
    expect(rig.scheduler.getIntervals()).toEqual([]);
    await jest.advanceTimersByTimeAsync(10 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(1);
    expect(rig.stream.latest('BTC-USD')).toBeUndefined();
  });
});
