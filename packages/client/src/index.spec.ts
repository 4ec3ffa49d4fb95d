import type { Tick } from '../../../src/shared/wire';
import type { ConnectionEnv, ConnectionStatus } from './connection';
import { connect, type PriceClient } from './index';
import type { EventSourceLike } from './price-feed';

/** An EventSource the test drives: every instance is recorded with its URL and listeners. */
class FakeEventSource implements EventSourceLike {
  static made: FakeEventSource[] = [];
  readonly url: URL;
  closed = false;
  private readonly listeners = new Map<string, ((event: object) => void)[]>();
  constructor(url: string) {
    this.url = new URL(url);
    FakeEventSource.made.push(this);
  }
  addEventListener(type: string, listener: (event: object) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
  }
  fire(type: string, data?: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l({ data: data === undefined ? undefined : JSON.stringify(data) });
  }
  static last(): FakeEventSource {
    const es = FakeEventSource.made.at(-1);
    if (!es) throw new Error('no EventSource made');
    return es;
  }
}

const tick = (ms: number, price: number, pair = 'BTC-USD'): Tick => ({
  id: `${ms}-0`,
  pair,
  price,
  timestamp: new Date(ms).toISOString(),
  source: 'simulated',
});

const env: ConnectionEnv = { now: () => Date.now(), random: () => 0.5, isOnline: () => true, watchOnline: () => () => undefined };
const timing = { backoff: { baseMs: 1000, maxMs: 8000, jitter: 'equal' as const }, stableMs: 5000, settleMs: 1500 };

function open(extra: Partial<Parameters<typeof connect>[0]> = {}) {
  const client: PriceClient = connect({ baseUrl: 'http://prices.test:8080/ignored/path', transport: 'sse', pairs: ['BTC-USD', 'ETH-USD'], EventSource: FakeEventSource, env, timing, ...extra });
  const got = { prices: [] as string[], statuses: [] as ConnectionStatus[], resumed: [] as number[], resets: 0 };
  client.on('price', (t) => got.prices.push(t.id));
  client.on('status', (s) => got.statuses.push(s));
  client.on('resumed', (n) => got.resumed.push(n));
  client.on('reset', () => (got.resets += 1));
  return { client, got };
}

/** Lets the deferred first connection run. */
const started = (): Promise<void> => Promise.resolve();

describe('connect', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['queueMicrotask'] });
    FakeEventSource.made = [];
  });
  afterEach(() => jest.useRealTimers());

  it('connects to the stream path of the base URL with the pairs and conflation, and reports connecting then live', async () => {
    const { client, got } = open({ conflate: 500 });
    await started();
    const es = FakeEventSource.last();
    expect(es.url.origin + es.url.pathname).toBe('http://prices.test:8080/api/prices/stream');
    expect(es.url.searchParams.get('pairs')).toBe('BTC-USD,ETH-USD');
    expect(es.url.searchParams.get('conflate')).toBe('500');
    expect(es.url.searchParams.has('lastEventId')).toBe(false);
    es.fire('open');
    expect(got.statuses).toEqual([{ state: 'connecting', attempt: 0 }, { state: 'live' }]);
    expect(client.status).toEqual({ state: 'live' });
    client.close();
  });

  it('resumes from the last id after a drop, with a jittered delay, and drops the replayed duplicates', async () => {
    const { client, got } = open();
    await started();
    const first = FakeEventSource.last();
    first.fire('open');
    first.fire('price', tick(1_000_000, 10));
    first.fire('price', tick(1_000_100, 11, 'ETH-USD'));
    first.fire('error');
    expect(first.closed).toBe(true);
    // equal jitter with random 0.5: between cap/2 and cap, here 750 ms for the first retry (cap 1000).
    expect(got.statuses.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delayMs: 750, reason: 'event stream interrupted' });
    jest.advanceTimersByTime(749);
    expect(FakeEventSource.made).toHaveLength(1);
    jest.advanceTimersByTime(1);
    const second = FakeEventSource.last();
    expect(second.url.searchParams.get('lastEventId')).toBe('1000100-0');
    second.fire('open');
    second.fire('price', tick(1_000_100, 11, 'ETH-USD')); // an overlap: already delivered
    second.fire('price', tick(1_000_200, 12));
    expect(got.prices).toEqual(['1000000-0', '1000100-0', '1000200-0']);
    expect(client.lastEventId).toBe('1000200-0');
    client.close();
  });

  it('counts the ticks a resume replays and emits resumed once a live tick arrives', async () => {
    const { client, got } = open();
    await started();
    FakeEventSource.last().fire('open');
    FakeEventSource.last().fire('price', tick(Date.now(), 10));
    FakeEventSource.last().fire('error');
    jest.advanceTimersByTime(2000); // missed while away: published before the reconnection opens
    const away = Date.now() - 1000;
    FakeEventSource.last().fire('open');
    FakeEventSource.last().fire('price', tick(away, 11));
    FakeEventSource.last().fire('price', tick(away + 1, 12));
    expect(got.resumed).toEqual([]);
    FakeEventSource.last().fire('price', tick(Date.now() + 10, 13));
    expect(got.resumed).toEqual([2]);
    client.close();
  });

  it('forgets the last id on a reset, so that the next connection starts from the latest prices', async () => {
    const { client, got } = open({ lastEventId: '5-0' });
    await started();
    expect(FakeEventSource.last().url.searchParams.get('lastEventId')).toBe('5-0');
    FakeEventSource.last().fire('open');
    FakeEventSource.last().fire('reset', { reason: 'history_gap', oldestId: '900-0', oldestTimestamp: null });
    expect(got.resets).toBe(1);
    expect(client.lastEventId).toBeNull();
    FakeEventSource.last().fire('error');
    jest.advanceTimersByTime(1000);
    expect(FakeEventSource.last().url.searchParams.has('lastEventId')).toBe(false);
    client.close();
  });

  it('drops a malformed message and keeps the connection', async () => {
    const { client, got } = open();
    await started();
    FakeEventSource.last().fire('open');
    FakeEventSource.last().fire('price', { id: '1-0', pair: 'BTC-USD', price: -1, timestamp: 'x', source: 'simulated' });
    FakeEventSource.last().fire('price', tick(2, 3));
    expect(got.prices).toEqual(['2-0']);
    expect(FakeEventSource.last().closed).toBe(false);
    client.close();
  });

  it('stops reconnecting once closed, and use() opens it again from the last id', async () => {
    const { client } = open();
    await started();
    FakeEventSource.last().fire('open');
    FakeEventSource.last().fire('price', tick(7, 1));
    client.close();
    expect(FakeEventSource.last().closed).toBe(true);
    jest.advanceTimersByTime(60_000);
    expect(FakeEventSource.made).toHaveLength(1);
    client.use('sse');
    expect(FakeEventSource.made).toHaveLength(2);
    expect(FakeEventSource.last().url.searchParams.get('lastEventId')).toBe('7-0');
    client.close();
  });

  it('says so in the status when the platform has no EventSource and none was given', async () => {
    const { client, got } = open({ EventSource: undefined });
    await started();
    expect(got.statuses.at(-1)).toMatchObject({ state: 'reconnecting', reason: 'no EventSource on this platform: pass one in the options' });
    client.close();
  });

  it('refuses at once what the server would refuse on every attempt: no pairs, or a conflation out of range', () => {
    expect(() => open({ pairs: [] })).toThrow(TypeError);
    for (const conflate of [5, 60_001, 12.5, -1]) expect(() => open({ conflate })).toThrow(RangeError);
    expect(() => open({ conflate: 0 }).client.close()).not.toThrow();
    expect(FakeEventSource.made).toHaveLength(0);
  });

  it('does not open a connection when closed before the first one started', async () => {
    const { client } = open();
    client.close();
    await started();
    expect(FakeEventSource.made).toHaveLength(0);
  });
});
