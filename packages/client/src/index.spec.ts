import type { ConnectionEnv, ConnectionStatus } from './connection';
import { connect, type PriceClient } from './index';
import type { PriceStreamError } from './refusal';
import type { Tick } from './types';

type Chunk = { done: true } | { done: false; value: Uint8Array };

/**
 * One stream request of the SSE transport (`fetch`), driven by the test: it answers with a
 * stream (`open`) or a refusal, then sends events, and can be cut.
 */
class FakeStream {
  static made: FakeStream[] = [];
  readonly url: URL;
  readonly signal: AbortSignal;
  private answer!: (res: Response) => void;
  private fail!: (err: Error) => void;
  private readonly chunks: Chunk[] = [];
  private waiting: ((c: Chunk) => void) | null = null;
  private broken: ((err: Error) => void) | null = null;
  readonly response: Promise<Response>;
  constructor(url: string, signal: AbortSignal) {
    this.url = new URL(url);
    this.signal = signal;
    this.response = new Promise<Response>((resolve, reject) => {
      this.answer = resolve;
      this.fail = reject;
    });
    signal.addEventListener('abort', () => this.cut());
    FakeStream.made.push(this);
  }
  get closed(): boolean {
    return this.signal.aborted;
  }
  private reply(status: number, type: string, body: string | null): void {
    const reader = {
      read: () =>
        new Promise<Chunk>((resolve, reject) => {
          const next = this.chunks.shift();
          if (next) return resolve(next);
          this.waiting = resolve;
          this.broken = reject;
        }),
    };
    const res = {
      ok: status >= 200 && status < 300,
      status,
      statusText: '',
      headers: { get: (name: string) => (name.toLowerCase() === 'content-type' ? type : null) },
      body: body === null ? { getReader: () => reader, cancel: () => Promise.resolve() } : null,
      text: () => Promise.resolve(body ?? ''),
    };
    this.answer(res as unknown as Response);
  }
  open(): void {
    this.reply(200, 'text/event-stream; charset=utf-8', null);
  }
  refuse(status: number, body: unknown): void {
    this.reply(status, 'application/json', JSON.stringify(body));
  }
  /** No answer at all: the network is down. */
  unreachable(): void {
    this.fail(new TypeError('fetch failed'));
  }
  send(text: string): void {
    const chunk: Chunk = { done: false, value: new TextEncoder().encode(text) };
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting) waiting(chunk);
    else this.chunks.push(chunk);
  }
  fire(type: string, data?: unknown): void {
    this.send(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }
  /** The server ends the stream. */
  end(): void {
    const chunk: Chunk = { done: true };
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting) waiting(chunk);
    else this.chunks.push(chunk);
  }
  /** The connection drops mid-stream. */
  cut(): void {
    this.broken?.(new TypeError('terminated'));
    this.broken = null;
    this.waiting = null;
  }
  static last(): FakeStream {
    const s = FakeStream.made.at(-1);
    if (!s) throw new Error('no stream request made');
    return s;
  }
}

const fakeFetch = (url: string, init: { signal: AbortSignal }): Promise<Response> => new FakeStream(url, init.signal).response;

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
  const client: PriceClient = connect({ baseUrl: 'http://prices.test:8080/ignored/path', transport: 'sse', pairs: ['BTC-USD', 'ETH-USD'], env, timing, ...extra });
  const got = { prices: [] as string[], statuses: [] as ConnectionStatus[], resumed: [] as number[], resets: 0, errors: [] as PriceStreamError[] };
  client.on('price', (t) => got.prices.push(t.id));
  client.on('status', (s) => got.statuses.push(s));
  client.on('resumed', (n) => got.resumed.push(n));
  client.on('reset', () => (got.resets += 1));
  client.on('error', (e) => got.errors.push(e));
  return { client, got };
}

/** Lets the deferred first connection run, and what the stream reader awaits. */
const started = async (): Promise<void> => {
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
};

/**
 * The set-up of every test of the calling describe block: fake timers from 1,000,000 ms (queued
 * microtasks stay real) and the fake fetch, with no stream request made yet; both are restored
 * after each test (a test may take fetch away).
 */
function useFakeStreams(): void {
  let realFetch: typeof fetch;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['queueMicrotask'] });
    FakeStream.made = [];
    realFetch = globalThis.fetch;
    globalThis.fetch = fakeFetch as unknown as typeof fetch;
  });
  afterEach(() => {
    jest.useRealTimers();
    globalThis.fetch = realFetch;
  });
}

describe('connect', () => {
  useFakeStreams();

  it('connects to the stream path of the base URL with the pairs and conflation, and reports connecting then live', async () => {
    const { client, got } = open({ conflate: 500 });
    await started();
    const es = FakeStream.last();
    expect(es.url.origin + es.url.pathname).toBe('http://prices.test:8080/api/prices/stream');
    expect(es.url.searchParams.get('pairs')).toBe('BTC-USD,ETH-USD');
    expect(es.url.searchParams.get('conflate')).toBe('500');
    expect(es.url.searchParams.has('lastEventId')).toBe(false);
    es.open();
    await started();
    expect(got.statuses).toEqual([{ state: 'connecting', attempt: 0 }, { state: 'live' }]);
    expect(client.status).toEqual({ state: 'live' });
    client.close();
  });

  it('resumes from the last id after a drop, with a jittered delay, and drops the replayed duplicates', async () => {
    const { client, got } = open();
    await started();
    const first = FakeStream.last();
    first.open();
    first.send('retry: 2000\n\n:\n\n');
    first.fire('price', tick(1_000_000, 10));
    first.fire('price', tick(1_000_100, 11, 'ETH-USD'));
    await started();
    first.cut();
    await started();
    expect(first.closed).toBe(true);
    // The first retry after a drop: full jitter over [0, 1000], 500 ms with random 0.5.
    expect(got.statuses.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delayMs: 500, reason: 'event stream interrupted: terminated' });
    jest.advanceTimersByTime(499);
    expect(FakeStream.made).toHaveLength(1);
    jest.advanceTimersByTime(1);
    const second = FakeStream.last();
    expect(second.url.searchParams.get('lastEventId')).toBe('1000100-0');
    second.open();
    second.fire('price', tick(1_000_100, 11, 'ETH-USD')); // an overlap: already delivered
    second.fire('price', tick(1_000_200, 12));
    await started();
    expect(got.prices).toEqual(['1000000-0', '1000100-0', '1000200-0']);
    expect(client.lastEventId).toBe('1000200-0');
    client.close();
  });

  it("reconnects after the server's hint when it ends the stream with a retry: after the connect's (a shutdown)", async () => {
    const { client, got } = open();
    await started();
    const first = FakeStream.last();
    first.open();
    first.send('retry: 2000\n\n');
    first.fire('price', tick(1_000_000, 10));
    first.send(': server shutting down, reconnect\nretry: 1234\n\n');
    first.end();
    await started();
    expect(got.statuses.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delayMs: 1234, reason: 'event stream ended' });
    jest.advanceTimersByTime(1233);
    expect(FakeStream.made).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(FakeStream.made).toHaveLength(2);
    // The connect's own retry: alone is no hint.
    const second = FakeStream.last();
    second.open();
    second.send('retry: 2000\n\n');
    await started();
    jest.advanceTimersByTime(5000); // stable: the next drop is a first retry again
    second.end();
    await started();
    expect(got.statuses.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delayMs: 500, reason: 'event stream ended' });
    client.close();
  });

  it('takes a stream that sends nothing, not even a heartbeat, for dead and resumes from the last id', async () => {
    const { client, got } = open({ idleTimeoutMs: 45_000 });
    await started();
    const first = FakeStream.last();
    first.open();
    await started();
    first.fire('price', tick(1_000_000, 10));
    await started();
    // Heartbeats keep it: 40 s, a comment, 40 s more.
    jest.advanceTimersByTime(40_000);
    first.send(':\n\n');
    await started();
    jest.advanceTimersByTime(40_000);
    await started();
    expect(first.closed).toBe(false);
    // Then silence (the peer is gone without a word): cut at 45 s, reconnected from the last id.
    jest.advanceTimersByTime(5_000);
    await started();
    expect(first.closed).toBe(true);
    expect(got.statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1, reason: 'event stream idle for 45000 ms' });
    jest.advanceTimersByTime(1_000);
    expect(FakeStream.last()).not.toBe(first);
    expect(FakeStream.last().url.searchParams.get('lastEventId')).toBe('1000000-0');
    client.close();
  });

  it('counts the ticks a resume replays and emits resumed once a live tick arrives', async () => {
    const { client, got } = open();
    await started();
    FakeStream.last().open();
    FakeStream.last().fire('price', tick(Date.now(), 10));
    await started();
    FakeStream.last().cut();
    await started();
    jest.advanceTimersByTime(2000); // missed while away: published before the reconnection opens
    const away = Date.now() - 1000;
    FakeStream.last().open();
    FakeStream.last().fire('price', tick(away, 11));
    FakeStream.last().fire('price', tick(away + 1, 12));
    await started();
    expect(got.resumed).toEqual([]);
    FakeStream.last().fire('price', tick(Date.now() + 10, 13));
    await started();
    expect(got.resumed).toEqual([2]);
    client.close();
  });

  it('forgets the last id on a reset, so that the next connection starts from the latest prices', async () => {
    const { client, got } = open({ lastEventId: '5-0' });
    await started();
    expect(FakeStream.last().url.searchParams.get('lastEventId')).toBe('5-0');
    FakeStream.last().open();
    FakeStream.last().fire('reset', { reason: 'history_gap', oldestId: '900-0', oldestTimestamp: null });
    await started();
    expect(got.resets).toBe(1);
    expect(client.lastEventId).toBeNull();
    FakeStream.last().cut();
    await started();
    jest.advanceTimersByTime(1000);
    expect(FakeStream.last().url.searchParams.has('lastEventId')).toBe(false);
    client.close();
  });

  it('drops a malformed message and keeps the connection', async () => {
    const { client, got } = open();
    await started();
    FakeStream.last().open();
    FakeStream.last().fire('price', { id: '1-0', pair: 'BTC-USD', price: -1, timestamp: 'x', source: 'simulated' });
    FakeStream.last().send('event: price\ndata: {not json\n\n');
    FakeStream.last().fire('price', tick(2, 3));
    await started();
    expect(got.prices).toEqual(['2-0']);
    expect(FakeStream.last().closed).toBe(false);
    client.close();
  });

  it('delivers a tick from a source it does not know', async () => {
    const { client, got } = open();
    await started();
    FakeStream.last().open();
    FakeStream.last().fire('price', { ...tick(3, 4), source: 'binance' });
    await started();
    expect(got.prices).toEqual(['3-0']);
    client.close();
  });

  it('stops reconnecting once closed, and use() opens it again from the last id', async () => {
    const { client } = open();
    await started();
    FakeStream.last().open();
    FakeStream.last().fire('price', tick(7, 1));
    await started();
    client.close();
    expect(FakeStream.last().closed).toBe(true);
    jest.advanceTimersByTime(60_000);
    expect(FakeStream.made).toHaveLength(1);
    client.use('sse');
    expect(FakeStream.made).toHaveLength(2);
    expect(FakeStream.last().url.searchParams.get('lastEventId')).toBe('7-0');
    client.close();
  });

  it('stops at a permanent refusal and emits error with the code, status and message of the body', async () => {
    const { client, got } = open({ pairs: ['DOGE-USD'] });
    await started();
    FakeStream.last().refuse(400, { statusCode: 400, code: 'UNSUPPORTED_PAIR', message: 'DOGE-USD is not served here' });
    await started();
    expect(got.errors).toHaveLength(1);
    expect(got.errors[0]).toMatchObject({ name: 'PriceStreamError', code: 'UNSUPPORTED_PAIR', status: 400, message: 'DOGE-USD is not served here', transport: 'sse' });
    expect(got.errors[0]).toBeInstanceOf(Error);
    expect(got.statuses.at(-1)).toMatchObject({ state: 'failed', code: 'UNSUPPORTED_PAIR' });
    expect(client.status.state).toBe('failed');
    jest.advanceTimersByTime(120_000);
    expect(FakeStream.made).toHaveLength(1);
  });

  it('keeps the backoff for 429, 503 and a network error, and says no error', async () => {
    const { client, got } = open();
    await started();
    FakeStream.last().refuse(429, { statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many' });
    await started();
    expect(got.statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1, reason: 'refused: TOO_MANY_CONNECTIONS: too many' });
    jest.advanceTimersByTime(1000);
    FakeStream.last().refuse(503, { statusCode: 503, code: 'SHUTTING_DOWN', message: 'bye' });
    await started();
    expect(got.statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 2 });
    jest.advanceTimersByTime(2000);
    FakeStream.last().unreachable();
    await started();
    expect(got.statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 3, reason: 'event stream interrupted: fetch failed' });
    jest.advanceTimersByTime(4000);
    expect(FakeStream.made).toHaveLength(4);
    expect(got.errors).toEqual([]);
    client.close();
  });

  it('refuses an event name it does not emit with a clear error, and a listener that is not a function', () => {
    const { client } = open();
    const on = client.on as (event: string, listener: unknown) => () => void;
    expect(() => on('tick', () => undefined)).toThrow(new Error('price-stream: no event "tick"; the events are price, reset, status, freshness, resumed, error'));
    expect(() => on('toString', () => undefined)).toThrow(/no event "toString"/);
    expect(() => on('price', 'not a function')).toThrow(TypeError);
    client.close();
  });

  it('says so with an error, and stops, when the platform has no fetch', async () => {
    globalThis.fetch = undefined as unknown as typeof fetch;
    const { got } = open();
    await started();
    expect(got.errors.map((e) => e.code)).toEqual(['NO_FETCH']);
    expect(got.statuses.at(-1)).toMatchObject({ state: 'failed', code: 'NO_FETCH' });
  });

  it('refuses at once what the server would refuse on every attempt: no pairs, or a conflation out of range', () => {
    expect(() => open({ pairs: [] })).toThrow(TypeError);
    for (const conflate of [5, 60_001, 12.5, -1]) expect(() => open({ conflate })).toThrow(RangeError);
    expect(() => open({ conflate: 0 }).client.close()).not.toThrow();
    expect(FakeStream.made).toHaveLength(0);
  });

  it('does not open a connection when closed before the first one started', async () => {
    const { client } = open();
    client.close();
    await started();
    expect(FakeStream.made).toHaveLength(0);
  });
});

describe('connect with delta', () => {
  useFakeStreams();

  const delta = (s: FakeStream, id: string, data: unknown[]): void => s.send(`event: d\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`);

  it('asks for deltas and hands on full ticks: each delta applied to the last tick of its pair', async () => {
    const { client } = open({ delta: true });
    const ticks: Tick[] = [];
    client.on('price', (t) => ticks.push(t));
    await started();
    const s = FakeStream.last();
    expect(s.url.searchParams.get('delta')).toBe('1');
    s.open();
    s.fire('price', { ...tick(1_000_000, 10), bid: 9.9, ask: 10 });
    delta(s, '1001000-0', ['BTC-USD', 10.5, 1000, 0, 10.4, 10.5]);
    delta(s, '1002000-0', ['BTC-USD', 0, 1000, 0, 0, null]);
    await started();
    expect(ticks).toEqual([
      { ...tick(1_000_000, 10), bid: 9.9, ask: 10 },
      { ...tick(1_001_000, 10.5), bid: 10.4, ask: 10.5 },
      { ...tick(1_002_000, 10.5), bid: 10.4 },
    ]);
    expect(client.lastEventId).toBe('1002000-0');
    client.close();
  });

  it('never emits a tick of a delta whose base it lacks: it reconnects and resumes from its last id instead', async () => {
    const { client, got } = open({ delta: true });
    await started();
    const first = FakeStream.last();
    first.open();
    first.fire('price', tick(1_000_000, 10));
    delta(first, '1000500-0', ['ETH-USD', 20, 500]); // no ETH-USD tick on this connection
    delta(first, '1001000-0', ['BTC-USD', 11, 1000]); // after the broken one: not applied either
    await started();
    expect(got.prices).toEqual(['1000000-0']);
    expect(first.closed).toBe(true);
    expect(got.statuses.at(-1)).toMatchObject({ state: 'reconnecting', reason: 'delta without its base tick' });
    jest.advanceTimersByTime(1000);
    const second = FakeStream.last();
    expect(second).not.toBe(first);
    expect(second.url.searchParams.get('lastEventId')).toBe('1000000-0');
    expect(second.url.searchParams.get('delta')).toBe('1');
    second.open();
    second.fire('price', tick(1_000_500, 20, 'ETH-USD'));
    second.fire('price', tick(1_001_000, 11));
    await started();
    expect(got.prices).toEqual(['1000000-0', '1000500-0', '1001000-0']);
    client.close();
  });
});
