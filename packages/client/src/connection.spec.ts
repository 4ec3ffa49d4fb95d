import type { ResetEvent } from '../../../src/shared/wire';
import { Connection, type ConnectionEnv, type ConnectionStatus, type ConnectionTiming } from './connection';
import type { FeedHandlers, PriceFeed } from './price-feed';
import type { Refusal } from './refusal';
import { ResumeTracker } from './resume-tracker';
import type { Tick } from './types';

/** A transport driven by the test: it records each start and exposes that start's handlers. */
class FakeFeed implements PriceFeed {
  readonly kind = 'sse' as const;
  readonly starts: FeedHandlers[] = [];
  stops = 0;
  readonly lastIds: (string | null)[] = [];
  private readonly tracker: ResumeTracker | undefined;
  constructor(tracker?: ResumeTracker) {
    this.tracker = tracker;
  }
  start(handlers: FeedHandlers): void {
    this.lastIds.push(this.tracker?.lastId ?? null);
    this.starts.push(handlers);
  }
  stop(): void {
    this.stops += 1;
  }
  get current(): FeedHandlers {
    const h = this.starts.at(-1);
    if (!h) throw new Error('never started');
    return h;
  }
}

const timing: ConnectionTiming = { backoff: { baseMs: 1000, maxMs: 8000, jitter: 'full' }, stableMs: 5000, settleMs: 1500 };

function setup(random = 0.5) {
  let online = true;
  let onlineCb: ((online: boolean) => void) | null = null;
  const env: ConnectionEnv = {
    now: () => Date.now(),
    random: () => random,
    isOnline: () => online,
    watchOnline: (cb) => {
      onlineCb = cb;
      return () => (onlineCb = null);
    },
  };
  const statuses: ConnectionStatus[] = [];
  const ticks: string[] = [];
  const resets: ResetEvent[] = [];
  const resumed: number[] = [];
  const failures: Refusal[] = [];
  const tracker = new ResumeTracker();
  const conn = new Connection(
    tracker,
    { status: (s) => statuses.push(s), tick: (t) => ticks.push(t.id), reset: (r) => resets.push(r), pairStatus: () => undefined, resumed: (n) => resumed.push(n), failed: (r) => failures.push(r) },
    env,
    timing,
  );
  const setOnline = (v: boolean): void => {
    online = v;
    onlineCb?.(v);
  };
  return { conn, tracker, statuses, ticks, resets, resumed, failures, setOnline, last: () => statuses.at(-1) };
}

const tickAt = (offsetMs: number, seq = 0): Tick => {
  const ms = Date.now() + offsetMs;
  return { id: `${ms}-${seq}`, pair: 'BTC-USD', price: 100 + seq, timestamp: new Date(ms).toISOString(), source: 'simulated' };
};

describe(Connection.name, () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: Date.parse('2026-11-21T21:00:00.000Z') });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('goes from connecting to live when the feed opens', () => {
    const s = setup();
    const feed = new FakeFeed();
    s.conn.use(feed);
    expect(s.last()).toEqual({ state: 'connecting', attempt: 0 });
    feed.current.open();
    expect(s.last()).toEqual({ state: 'live' });
    s.conn.stop();
  });

  it('retries with growing jittered delays and shows each delay when the connection keeps failing', () => {
    const s = setup(0.5);
    const feed = new FakeFeed();
    s.conn.use(feed);
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      feed.current.closed('refused');
      const st = s.last();
      if (st?.state !== 'reconnecting') throw new Error(`expected reconnecting, got ${st?.state}`);
      delays.push(st.delayMs);
      jest.advanceTimersByTime(st.delayMs - 1);
      expect(feed.starts).toHaveLength(i + 1);
      jest.advanceTimersByTime(1);
      expect(s.last()).toEqual({ state: 'connecting', attempt: i + 1 });
    }
    expect(delays).toEqual([500, 1000, 2000, 4000]);
    s.conn.stop();
  });

  it('resets the backoff only after a connection stayed up for stableMs', () => {
    const s = setup(0.5);
    const feed = new FakeFeed();
    s.conn.use(feed);
    feed.current.closed('x');
    jest.advanceTimersByTime(500);
    feed.current.open();
    feed.current.closed('flap');
    expect(s.last()).toMatchObject({ state: 'reconnecting', attempt: 2, delayMs: 1000 });
    jest.advanceTimersByTime(1000);
    feed.current.open();
    jest.advanceTimersByTime(5000);
    feed.current.closed('later');
    expect(s.last()).toMatchObject({ state: 'reconnecting', attempt: 1, delayMs: 500 });
    s.conn.stop();
  });

  it("comes back after the server's own hint when a stream that was up ends with one (a shutdown), capped at maxMs", () => {
    const s = setup(0.5);
    const feed = new FakeFeed();
    s.conn.use(feed);
    feed.current.open();
    feed.current.closed('event stream ended', undefined, 734);
    expect(s.last()).toMatchObject({ state: 'reconnecting', attempt: 1, delayMs: 734 });
    jest.advanceTimersByTime(733);
    expect(feed.starts).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(feed.starts).toHaveLength(2);
    feed.current.open();
    jest.advanceTimersByTime(5000);
    feed.current.closed('event stream ended', undefined, 60_000);
    expect(s.last()).toMatchObject({ state: 'reconnecting', attempt: 1, delayMs: 8000 });
    s.conn.stop();
  });

  it('without a hint, the first retry after a drop has full jitter over [0, baseMs] even when the policy is equal; later ones the policy', () => {
    const equal: ConnectionTiming = { ...timing, backoff: { ...timing.backoff, jitter: 'equal' } };
    for (const [random, first] of [[0, 0], [0.5, 500], [0.999999, 1000]] as const) {
      const feed = new FakeFeed();
      const statuses: ConnectionStatus[] = [];
      const env: ConnectionEnv = { now: () => Date.now(), random: () => random, isOnline: () => true, watchOnline: () => () => undefined };
      const conn = new Connection(new ResumeTracker(), { status: (st) => statuses.push(st), tick: () => undefined, reset: () => undefined, pairStatus: () => undefined, resumed: () => undefined, failed: () => undefined }, env, equal);
      conn.use(feed);
      feed.current.open();
      feed.current.closed('socket closed (1006)');
      expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1, delayMs: first });
      jest.advanceTimersByTime(first);
      feed.current.closed('refused');
      // The second retry: equal jitter over [1000, 2000].
      expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 2, delayMs: Math.round(1000 + random * 1000) });
      conn.stop();
    }
  });

  it('reconnects from the last id and reports the missed ticks when the replay ends', () => {
    const s = setup();
    const feed = new FakeFeed(s.tracker);
    s.conn.use(feed);
    feed.current.open();
    const first = tickAt(0);
    feed.current.tick(first);
    feed.current.closed('dropped');
    const missed = [tickAt(100, 1), tickAt(200, 2)];
    jest.advanceTimersByTime(5000);
    expect(feed.lastIds.at(-1)).toBe(first.id);
    feed.current.open();
    feed.current.tick(first); // overlap: dropped
    for (const t of missed) feed.current.tick(t);
    expect(s.resumed).toEqual([]);
    jest.advanceTimersByTime(10);
    feed.current.tick(tickAt(0, 3));
    expect(s.resumed).toEqual([2]);
    expect(s.ticks).toEqual([first.id, missed[0]?.id, missed[1]?.id, expect.stringMatching(/-3$/)]);
    s.conn.stop();
  });

  it('counts a replay that arrives before the feed says it is open (socket.io-client emits it before connect)', () => {
    const s = setup();
    const feed = new FakeFeed(s.tracker);
    s.conn.use(feed);
    feed.current.open();
    feed.current.tick(tickAt(0));
    feed.current.closed('dropped');
    const missed = [tickAt(100, 1), tickAt(200, 2)];
    jest.advanceTimersByTime(5000);
    for (const t of missed) feed.current.tick(t);
    feed.current.open();
    expect(s.statuses.filter((x) => x.state === 'live')).toHaveLength(2);
    jest.advanceTimersByTime(10);
    feed.current.tick(tickAt(0, 3));
    expect(s.resumed).toEqual([2]);
    s.conn.stop();
  });

  it('reports the count after settleMs when no live tick follows a replay', () => {
    const s = setup();
    const feed = new FakeFeed();
    s.conn.use(feed);
    feed.current.open();
    feed.current.tick(tickAt(0));
    feed.current.closed('dropped');
    jest.advanceTimersByTime(3000);
    feed.current.open();
    expect(s.resumed).toEqual([]);
    jest.advanceTimersByTime(1500);
    expect(s.resumed).toEqual([0]);
    s.conn.stop();
  });

  it('forgets the last id and passes the reset on when the server has a history gap', () => {
    const s = setup();
    const feed = new FakeFeed(s.tracker);
    s.conn.use(feed);
    feed.current.open();
    feed.current.tick(tickAt(0));
    feed.current.closed('restart');
    jest.advanceTimersByTime(3000);
    feed.current.open();
    const reset: ResetEvent = { reason: 'history_gap', oldestId: null, oldestTimestamp: null };
    feed.current.reset(reset);
    expect(s.resets).toEqual([reset]);
    expect(s.tracker.lastId).toBeNull();
    jest.advanceTimersByTime(5000);
    expect(s.resumed).toEqual([]);
    s.conn.stop();
  });

  it('waits while offline and connects at once when the browser is back online', () => {
    const s = setup();
    const feed = new FakeFeed();
    s.conn.use(feed);
    feed.current.open();
    s.setOnline(false);
    expect(s.last()).toEqual({ state: 'offline' });
    expect(feed.stops).toBeGreaterThan(0);
    jest.advanceTimersByTime(60_000);
    expect(feed.starts).toHaveLength(1);
    s.setOnline(true);
    expect(s.last()).toEqual({ state: 'connecting', attempt: 0 });
    expect(feed.starts).toHaveLength(2);
    s.conn.stop();
  });

  it('ignores callbacks of a connection it already abandoned', () => {
    const s = setup();
    const feed = new FakeFeed();
    s.conn.use(feed);
    const old = feed.current;
    const other = new FakeFeed();
    s.conn.use(other);
    old.open();
    old.tick(tickAt(0));
    old.closed('late');
    expect(s.ticks).toEqual([]);
    expect(s.last()).toEqual({ state: 'connecting', attempt: 0 });
    s.conn.stop();
  });

  it('stays offline without an attempt when it starts while the browser is offline', () => {
    const s = setup();
    s.setOnline(false);
    const feed = new FakeFeed();
    s.conn.use(feed);
    expect(s.last()).toEqual({ state: 'offline' });
    expect(feed.starts).toHaveLength(0);
    s.conn.stop();
  });

  it('stops for good on a permanent refusal and reports it once, whatever the transport said it with', () => {
    const refusals: Refusal[] = [
      { code: 'UNSUPPORTED_PAIR', status: 400, message: 'DOGE-USD is not served here' },
      { code: 'INVALID_PAIR', status: null, message: 'not a pair' },
      { code: 'FORBIDDEN_ORIGIN', status: null, message: 'this origin may not open streams here' },
      { code: null, status: 401, message: 'HTTP 401' },
      { code: 'SOMETHING_NEW', status: 410, message: 'gone' },
    ];
    for (const refusal of refusals) {
      const s = setup();
      const feed = new FakeFeed();
      s.conn.use(feed);
      feed.current.closed('refused', refusal);
      expect(s.failures).toEqual([refusal]);
      expect(s.last()).toEqual({ state: 'failed', code: refusal.code, reason: 'refused' });
      jest.advanceTimersByTime(120_000);
      expect(feed.starts).toHaveLength(1);
      expect(feed.stops).toBeGreaterThan(0);
    }
  });

  it('keeps the backoff for 408, 429, 5xx, the transient codes and a refusal without status or known code', () => {
    const refusals: Refusal[] = [
      { code: 'TOO_MANY_CONNECTIONS', status: 429, message: 'x' },
      { code: 'RATE_LIMITED', status: null, message: 'x' },
      { code: null, status: 408, message: 'HTTP 408' },
      { code: 'SHUTTING_DOWN', status: 503, message: 'x' },
      { code: 'INTERNAL_ERROR', status: 500, message: 'x' },
      { code: null, status: 502, message: 'HTTP 502 Bad Gateway' },
      // Another instance may have the id already (docs/api.md): worth another attempt.
      { code: 'RESUME_POINT_IN_FUTURE', status: 400, message: 'x' },
      { code: 'TOO_MANY_CONNECTIONS', status: 403, message: 'x' },
      { code: 'SOMETHING_NEW', status: null, message: 'x' },
    ];
    for (const refusal of refusals) {
      const s = setup(0.5);
      const feed = new FakeFeed();
      s.conn.use(feed);
      feed.current.closed('refused', refusal);
      expect(s.failures).toEqual([]);
      expect(s.last()).toEqual({ state: 'reconnecting', attempt: 1, delayMs: 500, reason: 'refused' });
      jest.advanceTimersByTime(500);
      expect(feed.starts).toHaveLength(2);
      s.conn.stop();
    }
  });

  it('connects again after a permanent refusal when use() is called', () => {
    const s = setup();
    const feed = new FakeFeed();
    s.conn.use(feed);
    feed.current.closed('refused', { code: 'UNSUPPORTED_PAIR', status: 400, message: 'no' });
    s.conn.use(feed);
    expect(s.last()).toEqual({ state: 'connecting', attempt: 0 });
    expect(feed.starts).toHaveLength(2);
    s.conn.stop();
  });
});
