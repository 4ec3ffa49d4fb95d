import type { PairStatus, ResetEvent } from '../../../src/shared/wire';
import { backoffDelay, DEFAULT_BACKOFF, firstRetryDelay, type BackoffPolicy } from './backoff';
import type { FeedHandlers, PriceFeed } from './price-feed';
import { isPermanent, type Refusal } from './refusal';
import type { ResumeTracker } from './resume-tracker';
import type { Tick } from './types';

export type ConnectionStatus =
  /** A connection attempt is under way; `attempt` 0 is the first, then retries. */
  | { state: 'connecting'; attempt: number }
  | { state: 'live' }
  /** Waiting `delayMs` before retry number `attempt`. */
  | { state: 'reconnecting'; attempt: number; delayMs: number; reason: string }
  /** The browser says it is offline; no attempt until it is back. */
  | { state: 'offline' }
  /** Refused for good (the `error` event says why, with its code): no more attempts until `use()`. */
  | { state: 'failed'; code: Refusal['code']; reason: string };

export type ConnectionListener = {
  status(status: ConnectionStatus): void;
  /** A new tick (duplicates from an overlapping replay never get here). */
  tick(tick: Tick, receivedAt: number): void;
  /** The server could not resume: history had a gap. */
  reset(reset: ResetEvent): void;
  /** A pair's price went stale, or is fresh again (passed on as it comes). */
  pairStatus(status: PairStatus): void;
  /** A resume finished and brought back this many missed ticks. */
  resumed(missed: number): void;
  /** A permanent refusal: the connection has stopped. */
  failed(refusal: Refusal): void;
};

/** What the connection needs from the browser; tests pass their own. */
export type ConnectionEnv = {
  now(): number;
  random(): number;
  isOnline(): boolean;
  /** Calls back on online/offline changes; returns the unsubscribe function. */
  watchOnline(cb: (online: boolean) => void): () => void;
};

export type ConnectionTiming = {
  backoff: BackoffPolicy;
  /** A connection that stays up this long resets the backoff; a flapping one keeps backing off. */
  stableMs: number;
  /** A replay arrives in a burst: this long after opening without a live tick, the count is final. */
  settleMs: number;
};

export const DEFAULT_TIMING: ConnectionTiming = { backoff: DEFAULT_BACKOFF, stableMs: 5_000, settleMs: 1_500 };

type Timer = ReturnType<typeof setTimeout>;

/**
 * The one reconnect-and-resume policy of the client, whatever the transport: exponential backoff
 * with jitter between attempts, no attempts while the browser is offline (and one at once when it
 * is back), and every new connection resumes from the tracker's last id. A permanent refusal
 * (isPermanent: a 4xx but 408/429, or its code) stops it instead.
 */
export class Connection {
  private feed: PriceFeed | null = null;
  private attempt = 0;
  /** Bumped on every start/stop so that callbacks of an abandoned connection are ignored. */
  private generation = 0;
  private retryTimer: Timer | undefined;
  private stableTimer: Timer | undefined;
  private settleTimer: Timer | undefined;
  private unwatch: (() => void) | null = null;
  /** The current connection has opened (its feed said so, or a tick came first). */
  private isOpen = false;

  private readonly tracker: ResumeTracker;
  private readonly listener: ConnectionListener;
  private readonly env: ConnectionEnv;
  private readonly timing: ConnectionTiming;

  constructor(tracker: ResumeTracker, listener: ConnectionListener, env: ConnectionEnv, timing: ConnectionTiming = DEFAULT_TIMING) {
    this.tracker = tracker;
    this.listener = listener;
    this.env = env;
    this.timing = timing;
  }

  /** Connects with this feed, replacing any other (a transport switch resumes from the last id). */
  use(feed: PriceFeed): void {
    this.halt();
    this.feed = feed;
    this.attempt = 0;
    this.unwatch ??= this.env.watchOnline((online) => this.onlineChanged(online));
    if (this.env.isOnline()) this.connect();
    else this.listener.status({ state: 'offline' });
  }

  stop(): void {
    this.halt();
    this.feed = null;
    this.unwatch?.();
    this.unwatch = null;
  }

  private connect(): void {
    const feed = this.feed;
    if (!feed) return;
    const gen = ++this.generation;
    this.isOpen = false;
    const current = (): boolean => gen === this.generation;
    this.listener.status({ state: 'connecting', attempt: this.attempt });
    const handlers: FeedHandlers = {
      open: () => current() && this.opened(),
      tick: (tick) => current() && this.received(tick),
      reset: (reset) => current() && this.wasReset(reset),
      pairStatus: (status) => current() && this.listener.pairStatus(status),
      closed: (reason, refusal, retryMs) => current() && this.lost(reason, refusal, retryMs),
    };
    feed.start(handlers);
  }

  private opened(): void {
    if (this.isOpen) return;
    this.isOpen = true;
    this.tracker.beginResume(this.env.now());
    if (this.tracker.resuming) this.settleTimer = setTimeout(() => this.settle(), this.timing.settleMs);
    this.stableTimer = setTimeout(() => (this.attempt = 0), this.timing.stableMs);
    this.listener.status({ state: 'live' });
  }

  private received(tick: Tick): void {
    // socket.io-client emits the events that came with the handshake before its `connect`: the
    // replay of a resume can arrive before the feed says it is open.
    this.opened();
    const now = this.env.now();
    const accepted = this.tracker.accept(tick, now);
    if (accepted.kind === 'duplicate') return;
    this.listener.tick(tick, now);
    if (accepted.resumed !== null) {
      clearTimeout(this.settleTimer);
      this.listener.resumed(accepted.resumed);
    }
  }

  private settle(): void {
    const missed = this.tracker.settle();
    if (missed !== null) this.listener.resumed(missed);
  }

  private wasReset(reset: ResetEvent): void {
    clearTimeout(this.settleTimer);
    this.tracker.reset();
    this.listener.reset(reset);
  }

  private lost(reason: string, refusal?: Refusal, retryMs?: number): void {
    if (refusal && isPermanent(refusal)) {
      // The same request would be refused on every attempt: say so once, and stop.
      this.stop();
      this.listener.status({ state: 'failed', code: refusal.code, reason });
      this.listener.failed(refusal);
      return;
    }
    this.halt();
    if (!this.env.isOnline()) {
      this.listener.status({ state: 'offline' });
      return;
    }
    const dropped = this.isOpen && this.attempt === 0;
    this.attempt += 1;
    const delayMs = dropped ? firstRetryDelay(this.timing.backoff, retryMs, () => this.env.random()) : backoffDelay(this.attempt, this.timing.backoff, () => this.env.random());
    this.listener.status({ state: 'reconnecting', attempt: this.attempt, delayMs, reason });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  private onlineChanged(online: boolean): void {
    if (!this.feed) return;
    this.halt();
    if (online) {
      this.attempt = 0;
      this.connect();
    } else {
      // The connection is as good as gone; closing it now keeps the status honest and the
      // resume starts from the last id either way.
      this.listener.status({ state: 'offline' });
    }
  }

  /** Drops the current connection and every timer; a running resume count carries over. */
  private halt(): void {
    this.generation += 1;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.settleTimer);
    this.feed?.stop();
  }
}
