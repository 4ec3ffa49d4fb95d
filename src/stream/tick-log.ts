import { EMPTY, Subject, type Observable } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
import type { PublishPort } from '../ingest/publish-port';
import type { ResetEvent, Tick } from '../shared/wire';

/**
 * `since` means the tick's own `timestamp` (when this service retrieved the price), in history
 * and in every stream: a tick is at or after a time when its timestamp is. Its id's time is when
 * the log committed it (with Redis, by Redis' clock) and may differ by a few milliseconds or more.
 */
export function stampedSince(tick: Tick, sinceMs: number): boolean {
  return Date.parse(tick.timestamp) >= sinceMs;
}

/** A tick before the log has given it an id. */
export type TickDraft = Omit<Tick, 'id'>;

export type ReadAfterResult = { complete: true; ticks: Tick[] } | { complete: false; reset: ResetEvent };

export type HistoryPage = { complete: boolean; ticks: Tick[] };

export type LogStats = { size: number; oldestId: string | null; newestId: string | null };

/** An upstream answered for a pair at `atMs` (the price may be unchanged). */
export type Confirmation = { pair: string; atMs: number };

/** What a log delivers a committed tick into: its pair's channel (a ReplaySubject, PriceStreamService's), which knows the pair's latest tick. */
export type TickChannel = { next(tick: Tick): void; readonly latest: Tick | undefined };

/** Since when ticks cannot be written to the log, and why. */
export type WriteFailure = { since: number; message: string };

/**
 * Where ticks get their ids and are kept for resume. Two implementations: in memory (one
 * instance) and a Redis Stream (several instances). Both deliver every committed tick, in id
 * order, through `commit`: straight into its pair's channel (`deliverTo`), then to the readers
 * of `committed$`. Both know from which id their window is complete.
 */
export abstract class TickLog implements PublishPort {
  /** The pairs' channels; a pair without one is another deployment's (a shared Redis stream). */
  private channels: ReadonlyMap<string, TickChannel> | null = null;
  /** When each pair's price was last confirmed by an upstream (changed or not). */
  private readonly confirmedAt = new Map<string, number>();
  /**
   * Set when appending a tick failed, until a tick or a confirmation written since arrives
   * through the log (from this instance or the one that publishes now), or an append succeeds:
   * while it is set, prices confirmed here are not being published.
   */
  private failedWrite: WriteFailure | null = null;
  /** The readers beside the stream (candles, the newest id, the primary's bus): not in series with the channels. */
  private readonly beside = new Subject<Tick>();

  /** Every committed tick in id order, as it is committed (by this instance or another), after its pair's channel has it. */
  readonly committed$: Observable<Tick> = this.beside.asObservable();

  /** Where committed ticks go first (null: nowhere, at shutdown). */
  deliverTo(channels: ReadonlyMap<string, TickChannel> | null): void {
    this.channels = channels;
  }

  /**
   * The publish port (the ingest's next stage is the log itself): appends a tick if the price,
   * or the bid/ask, differs from the pair's latest one. Returns the new tick, or null when
   * nothing changed. Either way the pair counts as freshly confirmed, here and (shared) on every
   * instance.
   */
  async publish(draft: TickDraft): Promise<Tick | null> {
    const atMs = Date.parse(draft.timestamp);
    this.confirm(draft.pair, atMs);
    this.shareConfirmation({ pair: draft.pair, atMs });
    if (!changes(this.latest(draft.pair), draft)) return null;
    try {
      const tick = await this.append(draft);
      this.failedWrite = null;
      return tick;
    } catch (err) {
      this.failedWrite ??= { since: Date.now(), message: err instanceof Error ? err.message : String(err) };
      throw err;
    }
  }

  /** Records that an upstream answered for a pair at `atMs` (freshness). */
  confirm(pair: string, atMs: number): void {
    if (atMs > (this.confirmedAt.get(pair) ?? 0)) this.confirmedAt.set(pair, atMs);
  }

  /** A confirmation of the instance that polls came through the log: the pair is fresh, and writing works. */
  confirmedThrough({ pair, atMs }: Confirmation): void {
    this.confirm(pair, atMs);
    this.written(atMs);
  }

  lastConfirmedAt(pair: string): number | undefined {
    return this.confirmedAt.get(pair);
  }

  /** The pair's latest tick: the one its channel holds and replays. */
  latest(pair: string): Tick | undefined {
    return this.channels?.get(pair)?.latest;
  }

  /** Since when ticks cannot be written to the log, and why (null: they can, as far as is known). */
  get writeFailure(): WriteFailure | null {
    return this.failedWrite;
  }

  /** Something written at `atMs` came through the log: writing works again. */
  private written(atMs: number): void {
    if (this.failedWrite && atMs > this.failedWrite.since) this.failedWrite = null;
  }

  /**
   * Delivers a committed tick, in id order: its pair is confirmed, then the tick goes into the
   * pair's channel (and so to the hub), then to the readers of committed$.
   */
  protected commit(tick: Tick): void {
    const atMs = Date.parse(tick.timestamp);
    this.confirm(tick.pair, atMs);
    this.written(atMs);
    this.channels?.get(tick.pair)?.next(tick);
    this.beside.next(tick);
  }

  /** Nothing more will be committed here (shutdown): completes committed$. */
  protected endCommits(): void {
    this.beside.complete();
  }

  /** Gives the draft an id, keeps it in the window and delivers it (`commit`). */
  abstract append(draft: TickDraft): Promise<Tick>;

  /** The newest tick of each pair still in the window (used once at start-up). */
  abstract latestPerPair(): Promise<Tick[]>;

  /**
   * The ticks of `pairs` strictly after an id, or at or after a time, in id order, or a reset
   * when the window no longer reaches back to that point (all or nothing).
   */
  abstract readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult>;

  /** Up to `limit` ticks of one pair, oldest first: the first ones at or after `sinceMs`, or the newest ones. */
  abstract history(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage>;

  abstract stats(): LogStats;

  /**
   * Confirmations made by the instance that polls, for instances that do not: a price that does
   * not change makes no tick, yet keeps the pair fresh everywhere. A log of one instance has none.
   */
  readonly confirmations$: Observable<Confirmation> = EMPTY;

  /**
   * Gaps in what committed$ delivered: an instance whose tail was cut off from the shared log
   * for longer than the window reaches back lost ticks its live subscribers never got. They are
   * then sent `reset` and the latest tick of each pair, as a resume that failed. Alone: none.
   */
  readonly gaps$: Observable<ResetEvent> = EMPTY;

  /** Shares a confirmation with the other instances (see confirmations$); nothing to do alone. */
  shareConfirmation(_confirmation: Confirmation): void {}

  /**
   * Resolves true once committed$ has delivered everything the log held when called (a new
   * leader waits for it, so that its price dedup starts from the latest ticks). Alone: at once.
   */
  catchUp(): Promise<boolean> {
    return Promise.resolve(true);
  }
}

/**
 * Whether a draft would change what subscribers see of the pair: its price, or a bid or ask it
 * carries (a source without bid/ask, e.g. after a failover, confirms the price and changes nothing).
 */
export function changes(latest: Tick | undefined, draft: TickDraft): boolean {
  if (!latest || latest.price !== draft.price) return true;
  return (draft.bid !== undefined && draft.bid !== latest.bid) || (draft.ask !== undefined && draft.ask !== latest.ask);
}
