import { Injectable, Logger, Optional, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { withDeadline } from '../util/deadline';
import { AppConfig } from '../config/app-config';
import { WorkerLink } from '../cluster/worker-link';
import { LeaderElection } from '../redis/leader-election.service';
import { RedisClients } from '../redis/redis.clients';
import type { Tick } from '../shared/wire';
import { TickLog } from '../stream/tick-log';
import type { Minute } from './minute';
import { MinuteBook } from './minute-book';
import { RedisCandles } from './redis-candles';

/** How often the leader writes the minutes its ticks changed, and followers look for a backfill. */
const FLUSH_MS = 1_000;
const SYNC_MS = 5_000;
const PRUNE_MS = 60_000;
const LOAD_TIMEOUT_MS = 5_000;
/**
 * What an instance writes when it becomes the writer (the leader): the minutes it built while it
 * was not, which nobody may have written (ticks before the first election; the old leader's
 * last unflushed second). Every instance builds every minute from the same ticks.
 */
const TAKEOVER_MS = 5 * 60_000;
/** A worker without Redis asks the primary for its candles this long after its start (the backfill lands in the first seconds), then every minute. */
const PULL_AFTER_MS = [0, 2_000, 5_000, 10_000, 20_000, 40_000];
const PULL_EVERY_MS = 60_000;

/**
 * The primary's one-minute candles for a worker: every pair's, when the worker has not seen the
 * primary's latest backfill (`fills` counts those that put minutes in); else `pairs` is null.
 */
export type CandleSnapshot = { fills: number; pairs: Record<string, Minute[]> | null };

/**
 * The one-minute candles of every configured pair, separate from the tick window: built from
 * every committed tick (every instance sees all of them on committed$), kept CANDLE_RETENTION.
 * Reads are always from memory. With REDIS_URL the minutes are also in Redis (RedisCandles):
 * loaded at start, written by the leader only (the minutes its ticks changed, once a second; a
 * backfill at once, with the generation raised so that followers read the pair again).
 * With WORKERS and no Redis the primary keeps them too (it has every tick and runs the
 * backfill) and each worker fills what it lacks from the primary's (`snapshot`): the history
 * from before it started and the backfill.
 */
@Injectable()
export class CandleStore implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(CandleStore.name);
  readonly book: MinuteBook;
  private readonly shared: RedisCandles | null;
  private readonly dirty = new Map<string, Map<number, Minute>>();
  private readonly seenGenerations = new Map<string, number>();
  /** Per pair, the last tick time already counted in what was loaded from Redis. */
  private readonly loadedUpTo = new Map<string, number>();
  private subscription: Subscription | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private flushing: Promise<void> = Promise.resolve();
  /** Backfills that put minutes in here; and, in a worker, the primary's count it last pulled. */
  private fills = 0;
  private pulledFills = -1;
  /** Whether the last flush found this instance the writer. */
  private wasWriting = false;

  constructor(
    private readonly config: AppConfig,
    private readonly log: TickLog,
    @Optional() redis?: RedisClients,
    @Optional() private readonly leader?: LeaderElection,
    @Optional() private readonly link?: WorkerLink,
  ) {
    this.book = new MinuteBook(config.candleRetentionMs);
    this.shared = redis ? new RedisCandles(redis.command, (name) => redis.key(name)) : null;
  }

  /** Whether this instance writes the shared copy (always, without Redis: there is none). */
  get writes(): boolean {
    return this.shared === null || this.leader?.isLeader === true;
  }

  async onModuleInit(): Promise<void> {
    if (this.shared) {
      await withDeadline(this.loadAll(), LOAD_TIMEOUT_MS, 'loading the candles from Redis').catch((err: unknown) =>
        this.logger.warn({ msg: 'candles not loaded from Redis; live ones only until the next sync', error: err instanceof Error ? err.message : String(err) }),
      );
      // What the leader flushed while this instance started (before its tail delivered): read once more.
      const again = setTimeout(() => void this.loadAll().catch(() => undefined), 2 * FLUSH_MS + 500);
      again.unref();
      this.timers.push(again);
      this.every(FLUSH_MS, () => this.flush());
      this.every(SYNC_MS, () => this.sync());
    }
    this.every(PRUNE_MS, () => this.prune());
    if (this.link && !this.shared) {
      for (const ms of PULL_AFTER_MS) this.after(ms, () => this.pull());
      this.every(PULL_EVERY_MS, () => this.pull());
    }
    this.subscription = this.log.committed$.subscribe((tick) => this.record(tick));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.subscription?.unsubscribe();
    for (const t of this.timers) clearTimeout(t);
    await this.flush();
  }

  record(tick: Tick): void {
    if (!this.config.pairSet.has(tick.pair)) return;
    const ms = Date.parse(tick.timestamp);
    if (!Number.isFinite(ms) || ms <= (this.loadedUpTo.get(tick.pair) ?? -Infinity)) return;
    const minute = this.book.addTick(tick.pair, tick.price, ms);
    if (this.shared && this.writes) this.markDirty(tick.pair, minute);
  }

  /** Puts backfilled minutes where there are none; written through at once when this instance writes. */
  async fill(pair: string, minutes: readonly Minute[]): Promise<number> {
    const added = this.book.fill(pair, minutes);
    if (added.length > 0) this.fills++;
    if (added.length > 0 && this.shared && this.writes) await this.shared.write(pair, added, true);
    return added.length;
  }

  /**
   * Every pair's minutes, for a worker of this primary that has seen `knownFills` of its
   * backfills: nothing when that is all of them (a worker's own ticks make its live minutes; it
   * lacks only the history from before its start, which its first pull brings, and backfills).
   */
  snapshot(knownFills: number): CandleSnapshot {
    if (knownFills === this.fills) return { fills: this.fills, pairs: null };
    return { fills: this.fills, pairs: Object.fromEntries(this.config.pairs.map((pair) => [pair, this.book.range(pair, 0, Number.MAX_SAFE_INTEGER)])) };
  }

  /** A worker without Redis: puts in the primary's minutes that this worker has none for. */
  private async pull(): Promise<void> {
    const snapshot = await this.link!.request<CandleSnapshot>({ ps: 'candles', fills: this.pulledFills });
    for (const pair of this.config.pairs) {
      const minutes = snapshot.pairs?.[pair];
      if (Array.isArray(minutes) && minutes.length > 0) this.book.fill(pair, minutes);
    }
    this.pulledFills = snapshot.fills;
  }

  private markDirty(pair: string, minute: Minute): void {
    let minutes = this.dirty.get(pair);
    if (!minutes) this.dirty.set(pair, (minutes = new Map()));
    minutes.set(minute.start, minute);
  }

  private flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const shared = this.shared;
      if (!shared) return;
      const writes = this.writes;
      if (writes && !this.wasWriting) {
        const now = Date.now();
        for (const pair of this.config.pairs) for (const m of this.book.range(pair, now - TAKEOVER_MS, now + 60_000)) this.markDirty(pair, m);
      }
      this.wasWriting = writes;
      if (this.dirty.size === 0) return;
      // An instance that lost the lease (after a freeze, say) must not overwrite the new leader's minutes.
      if (!writes) return void this.dirty.clear();
      const batch = [...this.dirty].map(([pair, minutes]) => [pair, [...minutes.values()]] as const);
      this.dirty.clear();
      try {
        await Promise.all(batch.map(([pair, minutes]) => shared.write(pair, minutes, false)));
      } catch (err) {
        // Put them back: the next flush tries again (newer state of the same minute wins).
        for (const [pair, minutes] of batch) for (const m of minutes) if (!this.dirty.get(pair)?.has(m.start)) this.markDirty(pair, m);
        this.logger.debug({ msg: 'candle flush failed', error: err instanceof Error ? err.message : String(err) });
      }
    });
    return this.flushing;
  }

  private async loadAll(): Promise<void> {
    const shared = this.shared;
    if (!shared) return;
    const generations = await shared.generations(this.config.pairs);
    await Promise.all(this.config.pairs.map((pair, i) => this.load(pair, generations[i])));
  }

  /** Reads a pair from Redis; a minute this instance saw more of than Redis holds is kept. */
  private async load(pair: string, generation: number): Promise<void> {
    if (!this.shared) return;
    const stored = await this.shared.load(pair);
    const local = new Map(this.book.range(pair, 0, Number.MAX_SAFE_INTEGER).map((m) => [m.start, m]));
    const merged = stored.map((m) => {
      const mine = local.get(m.start);
      local.delete(m.start);
      return mine && (mine.lastMs ?? 0) > (m.lastMs ?? 0) ? mine : m;
    });
    this.book.replace(pair, [...merged, ...local.values()]);
    this.seenGenerations.set(pair, generation);
    const newest = this.book.newest(pair);
    if (newest?.lastMs != null) this.loadedUpTo.set(pair, Math.max(newest.lastMs, this.loadedUpTo.get(pair) ?? -Infinity));
  }

  /** Followers: read a pair again when the leader raised its generation (a backfill). */
  private async sync(): Promise<void> {
    if (!this.shared || this.writes) return;
    const generations = await this.shared.generations(this.config.pairs);
    await Promise.all(this.config.pairs.map((pair, i) => (generations[i] !== this.seenGenerations.get(pair) ? this.load(pair, generations[i]) : undefined)));
  }

  private async prune(): Promise<void> {
    const now = Date.now();
    this.book.prune(now);
    if (this.shared && this.writes) {
      const shared = this.shared;
      await Promise.all(this.config.pairs.map((pair) => shared.prune(pair, now - this.config.candleRetentionMs)));
    }
  }

  private after(ms: number, work: () => Promise<void>): void {
    this.schedule(setTimeout, ms, work);
  }

  private every(ms: number, work: () => Promise<void>): void {
    this.schedule(setInterval, ms, work);
  }

  private schedule(start: (run: () => void, ms: number) => NodeJS.Timeout, ms: number, work: () => Promise<void>): void {
    const timer = start(() => {
      work().catch((err: unknown) => this.logger.debug({ msg: 'candle store task failed', error: err instanceof Error ? err.message : String(err) }));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
