import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { loadConfig, type AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { SourceName } from '../shared/wire';
import { SourceError, type PriceSource, type Quote, type SourceErrorKind, type SourceResult } from '../sources/price-source';
import type { PushFeed, PushFeedObserver, PushFeedStatus } from '../sources/push-feed';
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
    poller = new PricePollerService(new SourceRegistry(sources), stream, config, scheduler, new MetricsService());
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

describe(`${PricePollerService.name} price checks`, () => {
  let config: AppConfig;
  let stream: PriceStreamService;
  let poller: PricePollerService;
  let metrics: MetricsService;
  let warn: jest.SpyInstance;

  const build = (sources: FakeSource[], env: Record<string, string> = {}): void => {
    config = loadConfig({ PAIRS: 'BTC-USD', POLL_INTERVAL_MS: String(INTERVAL_MS), SOURCE_TIMEOUT_MS: String(TIMEOUT_MS), SOURCE_BACKOFF_MAX_MS: '60000', ...env });
    metrics = new MetricsService();
    stream = new PriceStreamService(new MemoryTickLog(config), config, metrics);
    poller = new PricePollerService(new SourceRegistry(sources), stream, config, new SchedulerRegistry(), metrics);
  };
  const start = async (): Promise<void> => {
    poller.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
  };
  const poll = () => jest.advanceTimersByTimeAsync(INTERVAL_MS);
  const counted = async (counter: 'priceJumps' | 'pricesRejected', labels: Record<string, string>): Promise<number> => {
    const { values } = await metrics[counter].get();
    return values.filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l)).reduce((n, v) => n + v.value, 0);
  };
  const warnings = (): string[] => warn.mock.calls.map((c: unknown[]) => (c[0] as { msg: string }).msg);
  /** Every price published for BTC-USD, oldest first. */
  const published = async (): Promise<number[]> => (await stream.history('BTC-USD', undefined, 100)).ticks.map((t) => t.price);

  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    await poller.beforeApplicationShutdown();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it.each([[1e308], [1e-300], [Number.NaN]])('never publishes %p and asks the next source in the same poll', async (price) => {
    const kraken = new FakeSource('kraken', answers(price));
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    expect(await published()).toEqual([97000]);
    expect(stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(await counted('pricesRejected', { source: 'kraken', reason: 'implausible' })).toBe(1);
  });

  it('backs a source off like a failed request when it answers no usable price, at most a few requests a minute', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0); // the shortest backoffs the jitter allows
    const kraken = new FakeSource('kraken', answers(Number.NaN));
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'implausible' }) });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(coinbase.calls).toHaveLength(61);
    expect(kraken.calls.length).toBeLessThanOrEqual(8);
  });

  it('opens the circuit of a source whose answer has only bad_price failures', async () => {
    const kraken = new FakeSource('kraken', (pairs) => Promise.resolve({ quotes: [], failed: pairs.map((pair) => ({ pair, error: new SourceError('kraken', 'bad_price', 'NaN') })) }));
    build([kraken, new FakeSource('coinbase', answers(97000))]);
    await start();
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'bad_price' }) });
  });

  it('treats a price stamped older than STALE_AFTER_MS by its upstream as no price: the next source serves and the pair is not confirmed', async () => {
    const twoHoursAgo = new Date(START - 2 * 3_600_000).toISOString();
    const coingecko = new FakeSource('coingecko', answers(97000, twoHoursAgo));
    const coinbase = new FakeSource('coinbase', throws('http_status'));
    build([coingecko, coinbase], { STALE_AFTER_MS: '30000' });
    await start();
    expect(stream.latest('BTC-USD')).toBeUndefined();
    expect(stream.isFresh('BTC-USD')).toBe(false);
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'stale' }) });
    expect(await counted('pricesRejected', { source: 'coingecko', reason: 'stale' })).toBe(1);

    coinbase.behaviour = answers(97100);
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'coinbase' });
  });

  it('holds a jump back and publishes it when a second source confirms it in the same poll', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    const coinbase = new FakeSource('coinbase', answers(60000));
    build([kraken, coinbase]);
    await start();
    kraken.behaviour = answers(60100);
    await poll();
    expect(coinbase.calls).toEqual([['BTC-USD']]);
    expect(await published()).toEqual([97000, 60100]);
    expect(stream.latest('BTC-USD')?.source).toBe('kraken');
    expect(await counted('priceJumps', { source: 'kraken', outcome: 'held' })).toBe(1);
    expect(await counted('priceJumps', { source: 'kraken', outcome: 'confirmed' })).toBe(1);
  });

  it('drops a jump another source contradicts, publishes that source and backs the jumping one off', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    const coinbase = new FakeSource('coinbase', answers(97010));
    build([kraken, coinbase]);
    await start();
    kraken.behaviour = answers(48500); // 50 % off
    await poll();
    expect(await published()).toEqual([97000, 97010]);
    expect(stream.latest('BTC-USD')?.source).toBe('coinbase');
    expect(poller.sourceCircuits()[0]).toMatchObject({ state: 'open', lastError: expect.objectContaining({ kind: 'implausible' }) });
    expect(await counted('priceJumps', { source: 'kraken', outcome: 'rejected' })).toBe(1);
    expect(warnings()).toContain('price jump contradicted by another source; dropped');
  });

  it('publishes a jump no other source can check only after JUMP_CONFIRMATIONS answers in a row', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    build([kraken], { JUMP_CONFIRMATIONS: '3' });
    await start();
    kraken.behaviour = answers(48500);
    await poll();
    await poll();
    expect(await published()).toEqual([97000]);
    expect(poller.sourceCircuits()[0].state).toBe('closed');
    await poll();
    expect(await published()).toEqual([97000, 48500]);
    expect(await counted('priceJumps', { source: 'kraken', outcome: 'held' })).toBe(2);
    expect(await counted('priceJumps', { source: 'kraken', outcome: 'accepted' })).toBe(1);
  });

  it('starts the count over when a price within MAX_JUMP_PCT comes between two jumps', async () => {
    const kraken = new FakeSource('kraken', answers(97000));
    build([kraken], { JUMP_CONFIRMATIONS: '2' });
    await start();
    kraken.behaviour = answers(48500);
    await poll();
    kraken.behaviour = answers(97001);
    await poll();
    kraken.behaviour = answers(48500);
    await poll();
    expect(await published()).toEqual([97000, 97001]);
  });

  it('puts the ticker fields of the quote on the tick', async () => {
    const ticker = { bid: 96999, ask: 97001, open24h: 95000, high24h: 98000, low24h: 94000, volume24h: 1234.5 };
    build([new FakeSource('kraken', (pairs) => Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price: 97000, ...ticker })), failed: [] }))]);
    await start();
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97000, source: 'kraken', ...ticker });
  });

  it('publishes at most one tick per MIN_TICK_INTERVAL_MS, the latest price when the interval ends', async () => {
    let price = 97000;
    const kraken = new FakeSource('kraken', (pairs) => Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price: price++ })), failed: [] }));
    build([kraken], { MIN_TICK_INTERVAL_MS: '2500' });
    await start(); // t=0: 97000
    await poll(); // t=1000: 97001 waits
    await poll(); // t=2000: 97002 replaces it
    expect(await published()).toEqual([97000]);
    expect(stream.isFresh('BTC-USD')).toBe(true);
    await jest.advanceTimersByTimeAsync(500); // t=2500
    expect(await published()).toEqual([97000, 97002]);
    await jest.advanceTimersByTimeAsync(2499); // t=4999: 97003 (t=3000) and 97004 (t=4000) wait for t=5000
    expect(await published()).toEqual([97000, 97002]);
    await jest.advanceTimersByTimeAsync(1); // t=5000: the latest waiting price (or the poll of t=5000)
    const prices = await published();
    expect(prices).toHaveLength(3);
    expect(prices[2]).toBeGreaterThanOrEqual(97004);
  });
});

describe(`${PricePollerService.name} in PRICE_MODE=median`, () => {
  let stream: PriceStreamService;
  let poller: PricePollerService;
  let metrics: MetricsService;

  const build = (sources: FakeSource[], env: Record<string, string> = {}): void => {
    const config = loadConfig({ PAIRS: 'BTC-USD', PRICE_MODE: 'median', POLL_INTERVAL_MS: String(INTERVAL_MS), MAX_DEVIATION_PCT: '3', ...env });
    metrics = new MetricsService();
    stream = new PriceStreamService(new MemoryTickLog(config), config, metrics);
    poller = new PricePollerService(new SourceRegistry(sources), stream, config, new SchedulerRegistry(), metrics);
  };
  const start = async (): Promise<void> => {
    poller.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
  };

  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    for (const level of ['warn', 'log', 'debug', 'error'] as const) jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
  });
  afterEach(async () => {
    await poller.beforeApplicationShutdown();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('publishes the median of every source as a composite tick listing them', async () => {
    const sources = [new FakeSource('kraken', answers(97000)), new FakeSource('coinbase', answers(97200)), new FakeSource('coingecko', answers(97100))];
    build(sources);
    await start();
    expect(sources.map((s) => s.calls.length)).toEqual([1, 1, 1]);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'composite', sources: ['kraken', 'coinbase', 'coingecko'] });
    expect(stream.latest('BTC-USD')?.bid).toBeUndefined();
  });

  it('leaves out a source further than MAX_DEVIATION_PCT from the median of the others, counts it and backs it off', async () => {
    build([new FakeSource('kraken', answers(48500)), new FakeSource('coinbase', answers(97200)), new FakeSource('coingecko', answers(97000))]);
    await start();
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'composite', sources: ['coinbase', 'coingecko'] });
    expect(poller.sourceCircuits()[0]).toMatchObject({ source: 'kraken', state: 'open' });
    const { values } = await metrics.pricesRejected.get();
    expect(values).toContainEqual(expect.objectContaining({ labels: { source: 'kraken', reason: 'deviation' }, value: 1 }));
  });

  it('keeps the one of two disagreeing sources that stays near the last price, and publishes nothing when there is none', async () => {
    const kraken = new FakeSource('kraken', answers(48500));
    const coinbase = new FakeSource('coinbase', answers(97000));
    build([kraken, coinbase]);
    await start();
    expect(stream.latest('BTC-USD')).toBeUndefined(); // no last price to tell which is right

    kraken.behaviour = answers(97050);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97025, sources: ['kraken', 'coinbase'] });
    kraken.behaviour = answers(48500);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97000, sources: ['coinbase'] });
  });

  it('leaves out a stale source and the composite carries the oldest upstream time of its parts', async () => {
    const fresh = new Date(START - 5000).toISOString();
    build([new FakeSource('coingecko', answers(97000, new Date(START - 3_600_000).toISOString())), new FakeSource('coindesk', answers(97100, fresh)), new FakeSource('kraken', answers(97200))]);
    await start();
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97150, sources: ['coindesk', 'kraken'], sourceTimestamp: fresh });
  });
});

/** A push feed a test drives: what it serves now, and trades it pushes. */
class FakeFeed implements PushFeed {
  onQuote: ((quote: Quote) => void) | undefined;
  observer: PushFeedObserver | undefined;
  readonly serving = new Map<string, Quote>();
  running = false;

  constructor(readonly name: 'kraken' | 'coinbase') {}

  start(): void {
    this.running = true;
  }

  stop(): void {
    this.running = false;
  }

  current(pair: string): Quote | undefined {
    return this.running ? this.serving.get(pair) : undefined;
  }

  status(): PushFeedStatus {
    return {
      source: this.name,
      running: this.running,
      state: this.running ? 'subscribed' : 'disconnected',
      connected: this.running,
      up: [...this.serving.keys()],
      refused: [],
      lastFrameAt: null,
      lastQuoteAt: null,
      reconnects: 0,
    };
  }

  trade(quote: Quote): void {
    this.serving.set(quote.pair, quote);
    this.onQuote?.(quote);
  }
}

describe(`${PricePollerService.name} with a push feed`, () => {
  let stream: PriceStreamService;
  let poller: PricePollerService;
  let feed: FakeFeed;
  let kraken: FakeSource;

  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    for (const level of ['warn', 'log', 'debug', 'error'] as const) jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
    const config = loadConfig({ PAIRS: PAIRS.join(','), POLL_INTERVAL_MS: String(INTERVAL_MS) });
    stream = new PriceStreamService(new MemoryTickLog(config), config, new MetricsService());
    feed = new FakeFeed('kraken');
    kraken = new FakeSource('kraken', answers(3500));
    poller = new PricePollerService(new SourceRegistry([kraken], new Map([['kraken', feed]])), stream, config, new SchedulerRegistry(), new MetricsService());
  });
  afterEach(async () => {
    await poller.beforeApplicationShutdown();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const start = async (): Promise<void> => {
    poller.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
  };
  const fresh = new Date(START - 1000).toISOString();

  it('takes the pairs the feed serves from it and asks REST for the others in the same poll', async () => {
    feed.serving.set('BTC-USD', { pair: 'BTC-USD', price: 97100, sourceTimestamp: fresh, bid: 97099 });
    await start();
    expect(feed.running).toBe(true);
    expect(kraken.calls).toEqual([['ETH-USD']]);
    expect(stream.latest('BTC-USD')).toMatchObject({ price: 97100, source: 'kraken', sourceTimestamp: fresh, bid: 97099 });
    expect(stream.latest('ETH-USD')).toMatchObject({ price: 3500, source: 'kraken' });
  });

  it('asks REST for a pair whose pushed price is stale by the exchange time', async () => {
    feed.serving.set('BTC-USD', { pair: 'BTC-USD', price: 97100, sourceTimestamp: new Date(START - 3_600_000).toISOString() });
    await start();
    expect(kraken.calls).toEqual([PAIRS]);
  });

  it('publishes a pushed trade at once, but not a jump, and nothing while disabled (not the leader)', async () => {
    await start();
    feed.trade({ pair: 'ETH-USD', price: 3501, sourceTimestamp: fresh });
    await jest.advanceTimersByTimeAsync(0);
    expect(stream.latest('ETH-USD')).toMatchObject({ price: 3501, source: 'kraken' });

    feed.serving.clear();
    feed.onQuote?.({ pair: 'ETH-USD', price: 1750, sourceTimestamp: fresh }); // 50 % off: left for the poll
    await jest.advanceTimersByTimeAsync(0);
    expect(stream.latest('ETH-USD')?.price).toBe(3501);

    poller.setEnabled(false);
    expect(feed.running).toBe(false);
    feed.onQuote?.({ pair: 'ETH-USD', price: 3502, sourceTimestamp: fresh });
    await jest.advanceTimersByTimeAsync(0);
    expect(stream.latest('ETH-USD')?.price).toBe(3501);
    poller.setEnabled(true);
    expect(feed.running).toBe(true);
  });

  /** MIN_TICK_INTERVAL_MS=1000 with a shared tick log's round trip: every publish settles 200 ms later. */
  async function slowPublishPoller(): Promise<void> {
    await poller.beforeApplicationShutdown();
    const config = loadConfig({ PAIRS: PAIRS.join(','), POLL_INTERVAL_MS: String(INTERVAL_MS), MIN_TICK_INTERVAL_MS: '1000' });
    stream = new PriceStreamService(new MemoryTickLog(config), config, new MetricsService());
    const publish = stream.publish.bind(stream);
    // A shared tick log's round trip: the publish settles 200 ms later.
    jest.spyOn(stream, 'publish').mockImplementation(async (draft) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return publish(draft);
    });
    poller = new PricePollerService(new SourceRegistry([kraken], new Map([['kraken', feed]])), stream, config, new SchedulerRegistry(), new MetricsService());
  }

  it('starts MIN_TICK_INTERVAL_MS as a tick is published, not when a slow publish settles', async () => {
    await slowPublishPoller();
    await start();
    await jest.advanceTimersByTimeAsync(1500);
    expect(stream.latest('ETH-USD')?.price).toBe(3500);
    feed.trade({ pair: 'ETH-USD', price: 3501, sourceTimestamp: new Date().toISOString() });
    await jest.advanceTimersByTimeAsync(50);
    feed.trade({ pair: 'ETH-USD', price: 3502, sourceTimestamp: new Date().toISOString() }); // while the first one's publish is on its way
    await jest.advanceTimersByTimeAsync(500);
    expect(stream.latest('ETH-USD')?.price).toBe(3501);
    await jest.advanceTimersByTimeAsync(800);
    expect(stream.latest('ETH-USD')?.price).toBe(3502);
  });

  it('starts MIN_TICK_INTERVAL_MS as a deferred tick goes out too, not when its publish settles', async () => {
    await slowPublishPoller();
    await start();
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
    expect(stream.latest('ETH-USD')?.price).toBe(3502);
    await jest.advanceTimersByTimeAsync(750);
    expect(stream.latest('ETH-USD')?.price).toBe(3503);
  });
});
