import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig, type AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { SourceName } from '../shared/wire';
import { SourceError, type PriceSource, type SourceErrorKind, type SourceResult } from '../sources/price-source';
import { SourceRegistry } from '../sources/source-registry';
import { MemoryTickLog } from '../stream/memory-tick-log';
import { PriceStreamService } from '../stream/price-stream.service';
import { PricePollerService } from './price-poller.service';

const START = Date.parse('2026-11-21T21:00:00.000Z');
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 500;
const PAIRS = ['BTC-USD', 'ETH-USD'];

type Behaviour = (pairs: readonly string[], signal: AbortSignal) => Promise<SourceResult>;

/** An in-process source whose answer a test sets, recording every call. */
class FakeSource implements PriceSource {
  readonly calls: string[][] = [];
  readonly signals: AbortSignal[] = [];
  readonly unsupported = new Set<string>();

  constructor(
    readonly name: SourceName,
    public behaviour: Behaviour,
    readonly batches = true,
  ) {}

  supports(pair: string): boolean {
    return !this.unsupported.has(pair);
  }

  fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    this.calls.push([...pairs]);
    this.signals.push(signal);
    return this.behaviour(pairs, signal);
  }
}

const answers =
  (price: number, sourceTimestamp?: string): Behaviour =>
  (pairs) =>
    Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price, ...(sourceTimestamp && { sourceTimestamp }) })), failed: [] });

const throws =
  (kind: SourceErrorKind, retryAfterMs?: number): Behaviour =>
  () =>
    Promise.reject(new SourceError('kraken', kind, `fake ${kind}`, retryAfterMs));

/** Never settles, whatever the signal says: the worst a source can do. */
const hangsForever: Behaviour = () => new Promise<SourceResult>(() => undefined);

/** Settles only when aborted, as a real source does. */
const hangsUntilAborted: Behaviour = (_pairs, signal) =>
  new Promise<SourceResult>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

describe(PricePollerService.name, () => {
  let config: AppConfig;
  let stream: PriceStreamService;
  let scheduler: SchedulerRegistry;
  let poller: PricePollerService;
  let warn: jest.SpyInstance;
  let info: jest.SpyInstance;

  const build = (sources: FakeSource[], env: Record<string, string> = {}): PricePollerService => {
    config = loadConfig({
      PAIRS: PAIRS.join(','),
      POLL_INTERVAL_MS: String(INTERVAL_MS),
      SOURCE_TIMEOUT_MS: String(TIMEOUT_MS),
      SOURCE_BACKOFF_MAX_MS: '60000',
      ...env,
    });
    stream = new PriceStreamService(new MemoryTickLog(config), config, new MetricsService());
    scheduler = new SchedulerRegistry();
    poller = new PricePollerService(new SourceRegistry(sources), stream, config, scheduler);
    return poller;
  };

  /** Starts polling and lets the immediate first poll finish. */
  const start = async (): Promise<void> => {
    poller.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
  };

  const warnings = (): string[] => warn.mock.calls.map((c: unknown[]) => (c[0] as { msg: string }).msg);

  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    info = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    await poller.beforeApplicationShutdown();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('publishes the first source prices with the retrieval time, sourceTimestamp and source when it answers', async () => {
    const kraken = new FakeSource('kraken', answers(97000, '2026-11-21T20:59:59.000Z'));
    const coinbase = new FakeSource('coinbase', answers(1));
    build([kraken, coinbase]);
    await start();
    expect(stream.latest('BTC-USD')).toMatchObject({
      pair: 'BTC-USD',
      price: 97000,
      source: 'kraken',
      timestamp: new Date(START).toISOString(),
      sourceTimestamp: '2026-11-21T20:59:59.000Z',
    });
    expect(kraken.calls).toEqual([PAIRS]);
    expect(coinbase.calls).toEqual([]);
  });

  it('polls again every POLL_INTERVAL_MS', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    build([kraken]);
    await start();
    await jest.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(4);
    expect(poller.stats()).toEqual({ polls: 4, overruns: 0 });
  });

  it('fails over to the next source within the same poll when the first one fails', async () => {
    const kraken = new FakeSource('kraken', throws('http_status'));
    const coinbase = new FakeSource('coinbase', answers(97100));
    build([kraken, coinbase]);
    await start();
    expect(kraken.calls).toHaveLength(1);
    expect(coinbase.calls).toEqual([PAIRS]);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'coinbase' });
    expect(poller.sourceCircuits().map((c) => [c.source, c.state])).toEqual([
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
    build([kraken, coinbase]);
    await start();
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(coinbase.calls).toEqual([['ETH-USD'], ['ETH-USD'], ['ETH-USD']]);
    expect(kraken.calls).toHaveLength(3);
    expect(stream.latest('ETH-USD')?.source).toBe('coinbase');
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
  });

  it('skips a source for the pairs it does not support', async () => {
    const coingecko = new FakeSource('coingecko', answers(97000));
    coingecko.unsupported.add('ETH-USD');
    const coinbase = new FakeSource('coinbase', answers(3500));
    build([coingecko, coinbase]);
    await start();
    expect(coingecko.calls).toEqual([['BTC-USD']]);
    expect(coinbase.calls).toEqual([['ETH-USD']]);
  });

  it('tries the first source again once its circuit half-opens and serves from it after it recovers', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.999);
    const kraken = new FakeSource('kraken', throws('timeout'));
    const coinbase = new FakeSource('coinbase', answers(97100));
    build([kraken, coinbase]);
    await start();
    expect(stream.latest('BTC-USD')?.source).toBe('coinbase');

    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // the circuit half-opens after ~1 s: one trial, fails
    expect(kraken.calls).toHaveLength(2);
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'open', consecutiveFailures: 2 });

    kraken.behaviour = answers(97200);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // still open (~2 s backoff)
    expect(kraken.calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // half-open: the trial succeeds
    expect(kraken.calls).toHaveLength(3);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97200, source: 'kraken' });
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 0, nextAttemptAt: null });

    const coinbaseCalls = coinbase.calls.length;
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(5);
    expect(coinbase.calls).toHaveLength(coinbaseCalls);
  });

  it('sends a half-open non-batching source a single-pair trial', async () => {
    const coinbase = new FakeSource('coinbase', throws('network'), false);
    const simulated = new FakeSource('simulated', answers(1));
    build([coinbase, simulated]);
    await start();
    expect(coinbase.calls).toEqual([PAIRS]);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(coinbase.calls).toEqual([PAIRS, ['BTC-USD']]);
  });

  it('asks a failing source only a few times a minute while the next one serves', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0); // the shortest backoffs the jitter allows
    const kraken = new FakeSource('kraken', throws('http_status'));
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(coinbase.calls).toHaveLength(61);
    expect(kraken.calls.length).toBeLessThanOrEqual(8);
    expect(kraken.calls.length).toBeGreaterThanOrEqual(5);
  });

  it('waits at least Retry-After before asking a rate-limited source again', async () => {
    const kraken = new FakeSource('kraken', throws('rate_limited', 30_000));
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    await jest.advanceTimersByTimeAsync(29_000);
    expect(kraken.calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1000);
    expect(kraken.calls).toHaveLength(2);
  });

  it('skips and counts a poll that would start while the previous one still runs, with no second request', async () => {
    const kraken = new FakeSource('kraken', hangsForever);
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    expect(kraken.calls).toHaveLength(1);

    await jest.advanceTimersByTimeAsync(INTERVAL_MS); // the first poll still waits on kraken
    expect(poller.stats()).toEqual({ polls: 1, overruns: 1 });
    expect(coinbase.calls).toHaveLength(0);

    await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1000 - INTERVAL_MS); // the poll's deadline passes
    expect(coinbase.calls).toHaveLength(1);
    expect(stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(poller.sourceCircuits()[0].lastError?.kind).toBe('timeout');

    // kraken's request never settles: its pairs stay in flight, so it is not asked again.
    await jest.advanceTimersByTimeAsync(30_000);
    expect(kraken.calls).toHaveLength(1);
    expect(coinbase.calls.length).toBeGreaterThan(25);
  });

  it('aborts the request of a source that overruns its deadline', async () => {
    const kraken = new FakeSource('kraken', hangsUntilAborted);
    build([kraken]);
    await start();
    await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1000);
    expect(kraken.signals[0].aborted).toBe(true);
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: { kind: 'timeout' } });
  });

  it('logs one warning naming the offline command when no source answers, and again only after a recovery', async () => {
    const kraken = new FakeSource('kraken', throws('network'));
    const coinbase = new FakeSource('coinbase', throws('timeout'));
    build([kraken, coinbase]);
    await start();
    await jest.advanceTimersByTimeAsync(20 * INTERVAL_MS);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(/unreachable.*PRICE_SOURCES=simulated npm start/);

    coinbase.behaviour = answers(97000);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(info.mock.calls.some((c: unknown[]) => (c[0] as { msg: string }).msg === 'prices are flowing again')).toBe(true);
    expect(warnings()).toHaveLength(1);

    coinbase.behaviour = throws('http_status');
    await jest.advanceTimersByTimeAsync(20 * INTERVAL_MS);
    expect(warnings()).toHaveLength(2);
  });

  it('drops a price that is not finite and > 0 even when a source returns one', async () => {
    const kraken = new FakeSource('kraken', answers(Number.NaN));
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97000, source: 'coinbase' });
  });

  it('polls the given pairs at once when refresh is called', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    build([kraken]);
    await start();
    const report = await poller.refresh(['ETH-USD', 'DOGE-USD']);
    expect(kraken.calls).toEqual([PAIRS, ['ETH-USD']]);
    expect(report).toEqual({ ran: true, priced: [{ pair: 'ETH-USD', source: 'kraken' }], unpriced: [] });
  });

  it('answers refresh with the running poll instead of starting another', async () => {
    let release: (r: SourceResult) => void = () => undefined;
    const kraken = new FakeSource('kraken', () => new Promise<SourceResult>((resolve) => (release = resolve)));
    build([kraken]);
    await start();
    const refreshed = poller.refresh();
    release({ quotes: [{ pair: 'BTC-USD', price: 97000 }], failed: [] });
    await expect(refreshed).resolves.toMatchObject({ ran: true, priced: [{ pair: 'BTC-USD', source: 'kraken' }], unpriced: ['ETH-USD'] });
    expect(kraken.calls).toHaveLength(1);
  });

  it('does not poll while disabled and polls at once when enabled again', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    build([kraken]);
    poller.setEnabled(false); // as a leader election would, before start-up
    await start();
    await jest.advanceTimersByTimeAsync(5 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(0);
    await expect(poller.refresh()).resolves.toMatchObject({ ran: false });

    poller.setEnabled(true);
    await jest.advanceTimersByTimeAsync(0);
    expect(kraken.calls).toHaveLength(1);
  });

  it('cancels the request in flight when disabled', async () => {
    const kraken = new FakeSource('kraken', hangsUntilAborted);
    build([kraken]);
    await start();
    poller.setEnabled(false);
    await jest.advanceTimersByTimeAsync(0);
    expect(kraken.signals[0].aborted).toBe(true);
    expect(poller.sourceCircuits()[0].state).toBe('closed');
  });

  it('stops the interval and aborts the request in flight on shutdown', async () => {
    const kraken = new FakeSource('kraken', hangsUntilAborted);
    build([kraken]);
    await start();
    expect(scheduler.getIntervals()).toEqual([PricePollerService.INTERVAL_NAME]);

    await poller.beforeApplicationShutdown();
    expect(kraken.signals[0].aborted).toBe(true);
    expect(scheduler.getIntervals()).toEqual([]);
    await jest.advanceTimersByTimeAsync(10 * INTERVAL_MS);
    expect(kraken.calls).toHaveLength(1);
    expect(stream.latest('BTC-USD')).toBeUndefined();
  });

  it('reports each source circuit in PRICE_SOURCES order', async () => {
    build([new FakeSource('coingecko', throws('bad_json')), new FakeSource('simulated', answers(1))]);
    await start();
    expect(poller.sourceCircuits()).toEqual([
      expect.objectContaining({ source: 'coingecko', state: 'open', consecutiveFailures: 1, lastError: expect.objectContaining({ kind: 'bad_json' }) }),
      expect.objectContaining({ source: 'simulated', state: 'closed', consecutiveFailures: 0, lastSuccessAt: new Date(START).toISOString() }),
    ]);
  });
});
