import { AppConfig } from '../config/app-config';
import type { ResumePoint } from '../domain/resume';
import { compareTickIds, formatTickId, parseTickId, TickIdGenerator, type TickId } from '../domain/tick-id';
import type { ResetEvent, Tick } from '../shared/wire';
import { Fifo } from '../util/fifo';
import { stampedSince, TickLog, type HistoryPage, type LogStats, type ReadAfterResult, type TickDraft } from './tick-log';

type Entry = { tick: Tick; id: TickId };

/** An id this service wrote itself. */
function ownId(raw: string): TickId {
  const id = parseTickId(raw);
  if (id === null) throw new Error(`not a tick id: ${raw}`);
  return id;
}

/** A log's window as another process starts from it (a worker's ReplicaTickLog): the ticks, the floor and the start-up floor. */
export type WindowSnapshot = { ticks: Tick[]; floor: string; bootFloor: string };

/**
 * The single-instance tick log: a window bounded by HISTORY_SIZE and HISTORY_TTL_MS, with a
 * per-pair index. `floor` is the newest id no longer in the window (at start, the start-up
 * time): every tick with an id above it is in the window, which is what makes resume all or nothing.
 */
export class MemoryTickLog extends TickLog {
  private readonly all = new Fifo<Entry>();
  private readonly byPair = new Map<string, Fifo<Entry>>();
  private floor: TickId;
  private readonly bootFloor: TickId;
  private readonly ids: TickIdGenerator;

  /** `from`: another log's window to continue (a replica); else the window starts empty now. */
  constructor(
    private readonly config: AppConfig,
    private readonly now: () => number = Date.now,
    from?: WindowSnapshot,
  ) {
    super();
    this.floor = this.bootFloor = from ? ownId(from.bootFloor) : { ms: this.now(), seq: 0 };
    if (from && from.floor !== from.bootFloor) this.floor = ownId(from.floor);
    this.ids = new TickIdGenerator(this.floor);
    for (const tick of from?.ticks ?? []) this.keep(tick, ownId(tick.id));
  }

  append(draft: TickDraft): Promise<Tick> {
    const id = this.ids.next(this.now());
    const tick: Tick = { id: formatTickId(id), ...draft };
    this.keep(tick, id);
    return Promise.resolve(tick);
  }

  /** Keeps a tick that another log gave its id (a replica's feed), in id order; an id at or below the newest one is ignored. */
  protected insert(tick: Tick): void {
    const id = ownId(tick.id);
    const n = this.all.length;
    if (compareTickIds(id, n > 0 ? this.all.at(n - 1).id : this.floor) <= 0) return;
    this.keep(tick, id);
  }

  /** The window and floor, for a replica to start from. */
  snapshot(): WindowSnapshot {
    this.trim(this.now());
    const ticks: Tick[] = [];
    for (let i = 0; i < this.all.length; i++) ticks.push(this.all.at(i).tick);
    return { ticks, floor: formatTickId(this.floor), bootFloor: formatTickId(this.bootFloor) };
  }

  private keep(tick: Tick, id: TickId): void {
    const entry = { tick, id };
    this.all.push(entry);
    let q = this.byPair.get(tick.pair);
    if (!q) this.byPair.set(tick.pair, (q = new Fifo<Entry>()));
    q.push(entry);
    this.trim(this.now());
    this.commit(tick);
  }

  latestPerPair(): Promise<Tick[]> {
    this.trim(this.now());
    const out: Tick[] = [];
    for (const q of this.byPair.values()) if (q.length > 0) out.push(q.at(q.length - 1).tick);
    return Promise.resolve(out);
  }

  readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    this.trim(this.now());
    let start: number;
    // Ids and timestamps come from this process' clock, a timestamp before its id: a tick stamped
    // at or after a time has an id at or after it, so the search starts there and filters by timestamp.
    let since: number | undefined;
    if (point.kind === 'id') {
      if (compareTickIds(point.id, this.floor) < 0) return Promise.resolve({ complete: false, reset: this.resetEvent() });
      start = this.all.lowerBound((e) => compareTickIds(e.id, point.id) <= 0);
    } else {
      // Ticks at the floor's millisecond may be gone already: the time must be past it.
      if (point.ms <= this.floor.ms) return Promise.resolve({ complete: false, reset: this.resetEvent() });
      start = this.all.lowerBound((e) => e.id.ms < point.ms);
      since = point.ms;
    }
    const ticks: Tick[] = [];
    for (let i = start; i < this.all.length; i++) {
      const t = this.all.at(i).tick;
      if (pairs.has(t.pair) && (since === undefined || stampedSince(t, since))) ticks.push(t);
    }
    return Promise.resolve({ complete: true, ticks });
  }

  history(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage> {
    this.trim(this.now());
    const q = this.byPair.get(pair) ?? new Fifo<Entry>();
    const from = sinceMs === undefined ? Math.max(0, q.length - limit) : q.lowerBound((e) => e.id.ms < sinceMs);
    const ticks: Tick[] = [];
    for (let i = from; i < q.length && ticks.length < limit; i++) {
      const tick = q.at(i).tick;
      if (sinceMs === undefined || stampedSince(tick, sinceMs)) ticks.push(tick);
    }
    const complete = sinceMs === undefined ? this.floor === this.bootFloor : sinceMs > this.floor.ms;
    return Promise.resolve({ complete, ticks });
  }

  stats(): LogStats {
    const n = this.all.length;
    return { size: n, oldestId: n ? this.all.at(0).tick.id : null, newestId: n ? this.all.at(n - 1).tick.id : null };
  }

  private trim(now: number): void {
    const minMs = now - this.config.historyTtlMs;
    while (this.all.length > 0 && (this.all.length > this.config.historySize || this.all.at(0).id.ms < minMs)) {
      const gone = this.all.shift()!;
      this.byPair.get(gone.tick.pair)!.shift();
      this.floor = gone.id;
    }
  }

  private resetEvent(): ResetEvent {
    const oldest = this.all.length > 0 ? this.all.at(0).tick : null;
    return { reason: 'history_gap', oldestId: oldest?.id ?? null, oldestTimestamp: oldest?.timestamp ?? null };
  }
}
