import { EMPTY, Subject, type Observable } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
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

/** What a log delivers a committed tick into: its pair's channel (a ReplaySubject, PriceStreamService's). */
export type TickChannel = { next(tick: Tick): void };

/**
 * Where ticks get their ids and are kept for resume. Two implementations: in memory (one
 * instance) and a Redis Stream (several instances). Both deliver every committed tick, in id
 * order, through `commit`: straight into its pair's channel (`deliverTo`), then to the readers
 * of `committed$`. Both know from which id their window is complete.
 */
export abstract class TickLog {
  /** The pairs' channels; a pair without one is another deployment's (a shared Redis stream). */
  private channels: ReadonlyMap<string, TickChannel> | null = null;
  /** The readers beside the stream (candles, the newest id, the primary's bus): not in series with the channels. */
  private readonly beside = new Subject<Tick>();

  /** Every committed tick in id order, as it is committed (by this instance or another), after its pair's channel has it. */
  readonly committed$: Observable<Tick> = this.beside.asObservable();

  /** Where committed ticks go first (null: nowhere, at shutdown). */
  deliverTo(channels: ReadonlyMap<string, TickChannel> | null): void {
    this.channels = channels;
  }

  /** Delivers a committed tick, in id order: into its pair's channel, then to the readers of committed$. */
  protected commit(tick: Tick): void {
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
