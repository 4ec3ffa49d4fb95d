import { withDeadline } from '../util/deadline';
import { Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { Subject } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
import { compareTickIds, formatTickId, parseTickId, type TickId } from '../domain/tick-id';
import type { AppConfig } from '../config/app-config';
import { SOURCE_NAMES, TICKER_FIELDS, type ResetEvent, type SourceName, type Tick, type TickSource } from '../shared/wire';
import { stampedSince, TickLog, type Confirmation, type HistoryPage, type LogStats, type ReadAfterResult, type TickDraft } from '../stream/tick-log';
import { reconnectDelay, type RedisClients } from './redis.clients';

/**
 * XADD, then trim by age, in one script so that the two cannot be split by a failure. Both trims
 * cut a prefix of the stream (`~` only makes them cut less, in whole nodes); entries are never
 * deleted from the middle. The stream is therefore always a contiguous suffix of everything ever
 * appended to it, which is what makes its first entry a reliable floor (see `window`).
 * ARGV: MAXLEN, HISTORY_TTL_MS, field, value, ...
 */
const APPEND = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
local ms = tonumber(string.match(id, '^(%d+)-'))
redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', ms - tonumber(ARGV[2])))
return id`;

const PAGE = 1000;
/**
 * Ids come from Redis' clock, timestamps from the instance that polled: a tick stamped at or
 * after `since` may carry an id this much earlier. A read by time starts here and filters by
 * timestamp; whether the window is complete is still judged at `since` (only a tick at the
 * very edge of the window, under that much skew, could be missed).
 */
const ID_CLOCK_SLACK_MS = 5_000;
/** readAfter is awaited while a subscriber's live ticks are held: it must end. */
export const READ_TIMEOUT_MS = 5_000;
/** How long a new leader waits for its tail to reach the newest entry before polling. */
const CATCH_UP_TIMEOUT_MS = 2_000;

type Entry = [id: string, fields: string[]];

/** What XINFO STREAM tells about the window; null when the stream does not exist. */
type Window = { length: number; entriesAdded: number; lastGeneratedId: TickId; first: Entry | null; last: Entry | null; floor: TickId } | null;

export type RedisTickLogOptions = {
  /** XREAD BLOCK time of the tail. */
  blockMs?: number;
  /** How often confirmations and stats are read from Redis. */
  refreshMs?: number;
  /** Told, for every page the tail reads, how long ago its last entry was committed (seconds). */
  onTailLag?: (seconds: number) => void;
};

/**
 * The tick log of a deployment of several instances: a Redis Stream `<prefix>:ticks` whose ids
 * are the ticks' ids. Every instance tails it on a dedicated connection and emits each entry on
 * committed$, so every subscriber on every instance sees the same ids in the same order; the
 * ticks this instance appends reach its subscribers through the tail too.
 *
 * The floor (the newest id that may be missing) is computed from the stream itself: the id just
 * below its first entry (everything below it may have been trimmed or lost with a deleted
 * stream), or, once the stream is empty, its last generated id. No stream at all: nothing is
 * known, every resume point is a reset.
 */
export class RedisTickLog extends TickLog implements BeforeApplicationShutdown {
  private readonly logger = new Logger(RedisTickLog.name);
  private readonly gapSubject = new Subject<ResetEvent>();
  override readonly gaps$ = this.gapSubject.asObservable();
  private readonly confirmed = new Subject<Confirmation>();
  override readonly confirmations$ = this.confirmed.asObservable();
  readonly streamKey: string;
  private readonly confirmedKey: string;
  private readonly blockMs: number;
  private readonly refreshMs: number;
  /** The tail's position: the newest entry delivered on committed$. */
  private lastId: string | null = null;
  private restored = false;
  private tailing: Promise<void> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private cachedStats: LogStats = { size: 0, oldestId: null, newestId: null };

  private readonly onTailLag: ((seconds: number) => void) | undefined;

  constructor(
    private readonly clients: RedisClients,
    private readonly config: AppConfig,
    options: RedisTickLogOptions = {},
  ) {
    super();
    this.streamKey = clients.key('ticks');
    this.confirmedKey = clients.key('confirmed');
    this.blockMs = options.blockMs ?? 1000;
    this.onTailLag = options.onTailLag;
    this.refreshMs = options.refreshMs ?? Math.min(2000, Math.floor(config.staleAfterMs / 4));
  }

  async append(draft: TickDraft): Promise<Tick> {
    const fields = encode(draft);
    const id = await this.clients.command.eval(APPEND, 1, this.streamKey, String(this.config.historySize), String(this.config.historyTtlMs), ...fields);
    if (typeof id !== 'string') throw new Error('XADD returned no id');
    return { id, ...draft };
  }

  /**
   * The newest tick of each configured pair in the window. Also starts the tail from the newest
   * entry, so that nothing committed after this read is missed.
   */
  async latestPerPair(): Promise<Tick[]> {
    try {
      const ticks = await withDeadline(this.snapshot(), READ_TIMEOUT_MS, 'Redis: reading the latest ticks');
      this.restored = true;
      return ticks;
    } catch (err) {
      this.logger.warn({ msg: 'could not read the latest ticks; they come with the tail once Redis answers', error: message(err) });
      return [];
    } finally {
      this.start();
    }
  }

  readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    return withDeadline(this.readAfterNow(point, pairs), READ_TIMEOUT_MS, 'Redis: reading the history window');
  }

  history(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage> {
    return withDeadline(this.historyNow(pair, sinceMs, limit), READ_TIMEOUT_MS, 'Redis: reading history');
  }

  stats(): LogStats {
    const newestId = this.cachedStats.newestId;
    return { ...this.cachedStats, newestId: this.lastId !== null && (newestId === null || after(this.lastId, newestId)) ? this.lastId : newestId };
  }

  override shareConfirmation({ pair, atMs }: Confirmation): void {
    this.clients.command.hset(this.confirmedKey, pair, String(atMs)).catch((err: unknown) => {
      this.logger.debug({ msg: 'could not share a confirmation', pair, error: message(err) });
    });
  }

  /** Starts the tail and the periodic refresh (latestPerPair does it at start-up). */
  start(): void {
    if (this.tailing || this.stopped) return;
    this.tailing = this.tail();
    // Back from an outage (or on the primary Sentinel promoted): read at once, not after the backoff.
    this.clients.tail.on('ready', () => this.wake?.());
    this.refreshTimer = setInterval(() => void this.refresh(), this.refreshMs);
    this.refreshTimer.unref();
    void this.refresh();
  }

  /**
   * Resolves true once the tail has delivered the newest entry there was when called (a new
   * leader calls it so that its price dedup starts from the stream's latest ticks).
   */
  override async catchUp(timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    try {
      const w = await this.window();
      if (!w || !w.last) return this.lastId !== null;
      const target = w.last[0];
      while (Date.now() < deadline && !this.stopped) {
        if (this.lastId !== null && !after(target, this.lastId)) return true;
        await sleep(10);
      }
    } catch (err) {
      this.logger.debug({ msg: 'catch-up check failed', error: message(err) });
    }
    return false;
  }

  /** Stops the tail; its pending XREAD ends when RedisClients closes the connection. */
  beforeApplicationShutdown(): void {
    this.stopped = true;
    this.wake?.();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.endCommits();
    this.gapSubject.complete();
    this.confirmed.complete();
  }

  private async readAfterNow(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    // The newest id the subscriber has (or, for a time, is taken to have) seen.
    const fromMs = point.kind === 'time' ? Math.max(0, point.ms - ID_CLOCK_SLACK_MS) : 0;
    const bound: TickId = point.kind === 'id' ? point.id : { ms: point.ms - 1, seq: Number.MAX_SAFE_INTEGER };
    const ticks: Tick[] = [];
    let start = point.kind === 'id' ? `(${formatTickId(point.id)}` : String(fromMs);
    for (;;) {
      const page = await this.range('XRANGE', start, '+', PAGE);
      for (const entry of page) {
        const tick = decode(entry);
        if (tick && pairs.has(tick.pair) && (point.kind === 'id' || stampedSince(tick, point.ms))) ticks.push(tick);
      }
      if (page.length < PAGE) break;
      start = `(${page[page.length - 1][0]}`;
    }
    // The floor is read after the entries: it only rises, so if it is still at or below the
    // resume point now, nothing after that point was trimmed before the read ended.
    const w = await this.window();
    if (!w || compareTickIds(bound, w.floor) < 0) return { complete: false, reset: resetEvent(w) };
    return { complete: true, ticks };
  }

  private async historyNow(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage> {
    if (sinceMs === undefined) {
      const ticks = (await this.pairTicks('XREVRANGE', '+', '-', pair, limit)).reverse();
      const w = await this.window();
      // Like the memory log: complete while nothing has ever been trimmed.
      return { complete: w !== null && w.entriesAdded === w.length, ticks };
    }
    const fromMs = Math.max(0, sinceMs - ID_CLOCK_SLACK_MS);
    const ticks = await this.pairTicks('XRANGE', String(fromMs), '+', pair, limit, (tick) => stampedSince(tick, sinceMs));
    const w = await this.window();
    return { complete: w !== null && sinceMs > w.floor.ms, ticks };
  }

  /** Up to `limit` ticks of one pair, in the command's order, paging from `from` towards `to`. */
  private async pairTicks(command: 'XRANGE' | 'XREVRANGE', from: string, to: string, pair: string, limit: number, keep: (tick: Tick) => boolean = () => true): Promise<Tick[]> {
    const ticks: Tick[] = [];
    let cursor = from;
    while (ticks.length < limit) {
      const page = await this.range(command, cursor, to, PAGE);
      for (const entry of page) {
        const tick = decode(entry);
        if (tick?.pair === pair && ticks.length < limit && keep(tick)) ticks.push(tick);
      }
      if (page.length < PAGE) break;
      cursor = `(${page[page.length - 1][0]}`;
    }
    return ticks;
  }

  /** Reads the newest entry of each configured pair, and sets the tail's start if it has none. */
  private async snapshot(): Promise<Tick[]> {
    const w = await this.window();
    // Everything after this id is delivered by the tail; anything read below is deduplicated by id.
    this.lastId ??= w ? formatTickId(w.lastGeneratedId) : '0-0';
    const latest = new Map<string, Tick>();
    let end = '+';
    while (w && latest.size < this.config.pairs.length) {
      const page = await this.range('XREVRANGE', end, '-', PAGE);
      for (const entry of page) {
        const tick = decode(entry);
        if (tick && this.config.pairSet.has(tick.pair) && !latest.has(tick.pair)) latest.set(tick.pair, tick);
      }
      if (page.length < PAGE) break;
      end = `(${page[page.length - 1][0]}`;
    }
    return [...latest.values()];
  }

  /** Follows the stream with XREAD BLOCK on the tail connection, through any number of outages. */
  private async tail(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (this.lastId === null || !this.restored) {
          // Start-up could not read the stream: restore the latest ticks now, through the tail.
          const latest = await this.snapshot();
          this.restored = true;
          for (const tick of latest.sort((a, b) => (after(a.id, b.id) ? 1 : -1))) this.commit(tick);
        }
        const reply = await this.clients.tail.call('XREAD', 'COUNT', String(PAGE), 'BLOCK', String(this.blockMs), 'STREAMS', this.streamKey, this.lastId!);
        if (failures > 0) await this.resumed(failures);
        failures = 0;
        const entries = xreadEntries(reply);
        for (const entry of entries) {
          this.lastId = entry[0];
          const tick = decode(entry);
          if (tick) this.commit(tick);
        }
        const committed = this.onTailLag && entries.length > 0 ? parseTickId(entries[entries.length - 1][0]) : null;
        if (committed) this.onTailLag!(Math.max(0, Date.now() - committed.ms) / 1000);
      } catch (err) {
        if (this.stopped) break;
        failures++;
        if (failures === 1) this.logger.warn({ msg: 'tail interrupted; retrying from the last id seen', lastId: this.lastId, error: message(err) });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, reconnectDelay(failures));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }

  /**
   * After an outage: live subscribers here cannot have missed ticks unless the tail fell below the
   * floor (the stream was trimmed past it, or Redis came back without its data). Then they are
   * told of the gap, and the tail goes on from where it is: the XREAD that just answered read
   * from its last id, i.e. from the start of what the window holds, so they get every tick the
   * window still has, in order, then live ticks; every instance gives its subscribers the same ids.
   */
  private async resumed(failures: number): Promise<void> {
    const w = await this.window().catch(() => null);
    const last = this.lastId === null ? null : parseTickId(this.lastId);
    const fellBehind = w !== null && last !== null && compareTickIds(last, w.floor) < 0;
    // A replica promoted after a failover may lack the newest entries (replication is
    // asynchronous): ticks delivered here are then in no history. The last one delivered is above
    // the floor, so the stream must hold it (trims only cut below the floor) unless it was lost.
    // Said once, with a reset; the tail goes on after it (the new primary's clock has moved on).
    const rolledBack = w !== null && last !== null && compareTickIds(last, w.floor) > 0 && !(await this.holds(this.lastId!).catch(() => true));
    const fields = { msg: 'tail resumed', lastId: this.lastId, attempts: failures };
    if (rolledBack) {
      this.logger.warn({ ...fields, msg: 'tail resumed on a Redis that lacks ticks delivered here (failover to a replica behind its primary): live subscribers here get a reset', lastGeneratedId: formatTickId(w.lastGeneratedId) });
      this.gapSubject.next(resetEvent(w));
    } else if (fellBehind) {
      this.logger.warn({ ...fields, msg: 'tail resumed below the window floor: live subscribers here get a reset, then the window', floor: formatTickId(w.floor) });
      this.gapSubject.next(resetEvent(w));
    } else this.logger.log(fields);
  }

  /** Confirmations of unchanged prices (from the leader) and the window's stats, every refreshMs. */
  private async refresh(): Promise<void> {
    if (this.stopped || !this.clients.isConnected) return;
    try {
      const [confirmed, w] = await Promise.all([this.clients.command.hgetall(this.confirmedKey), this.window()]);
      for (const [pair, raw] of Object.entries(confirmed)) {
        const atMs = Number(raw);
        if (this.config.pairSet.has(pair) && Number.isFinite(atMs)) this.confirmed.next({ pair, atMs });
      }
      this.cachedStats = { size: w?.length ?? 0, oldestId: w?.first?.[0] ?? null, newestId: w?.last?.[0] ?? null };
    } catch (err) {
      this.logger.debug({ msg: 'refresh failed', error: message(err) });
    }
  }

  private async window(): Promise<Window> {
    let reply: unknown;
    try {
      reply = await this.clients.command.call('XINFO', 'STREAM', this.streamKey);
    } catch (err) {
      if (message(err).includes('no such key')) return null;
      throw err;
    }
    if (!Array.isArray(reply)) throw new Error('unexpected XINFO STREAM reply');
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < reply.length; i += 2) info.set(String(reply[i]), reply[i + 1]);
    const lastGeneratedId = parseTickId(String(info.get('last-generated-id') ?? ''));
    if (!lastGeneratedId) throw new Error('XINFO STREAM without last-generated-id');
    const first = asEntry(info.get('first-entry'));
    const last = asEntry(info.get('last-entry'));
    const firstId = first ? parseTickId(first[0]) : null;
    return {
      length: Number(info.get('length') ?? 0),
      entriesAdded: Number(info.get('entries-added') ?? 0),
      lastGeneratedId,
      first,
      last,
      floor: firstId ? below(firstId) : lastGeneratedId,
    };
  }

  /** Whether the stream holds an entry of this id. */
  private async holds(id: string): Promise<boolean> {
    return (await this.range('XRANGE', id, id, 1)).length > 0;
  }

  private async range(command: 'XRANGE' | 'XREVRANGE', from: string, to: string, count: number): Promise<Entry[]> {
    const reply = await this.clients.command.call(command, this.streamKey, from, to, 'COUNT', String(count));
    return Array.isArray(reply) ? entries(reply) : [];
  }
}

function encode(draft: TickDraft): string[] {
  const fields = ['pair', draft.pair, 'price', String(draft.price), 'timestamp', draft.timestamp, 'source', draft.source];
  if (draft.sourceTimestamp !== undefined) fields.push('sourceTimestamp', draft.sourceTimestamp);
  if (draft.sources !== undefined) fields.push('sources', draft.sources.join(','));
  for (const name of TICKER_FIELDS) {
    const value = draft[name];
    if (value !== undefined) fields.push(name, String(value));
  }
  return fields;
}

function decode([id, fields]: Entry): Tick | null {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i], fields[i + 1]);
  const pair = f.get('pair');
  const price = Number(f.get('price'));
  const timestamp = f.get('timestamp');
  const source = f.get('source') as TickSource | undefined;
  if (!pair || !timestamp || !source || !Number.isFinite(price)) return null;
  const tick: Tick = { id, pair, price, timestamp, source };
  const sourceTimestamp = f.get('sourceTimestamp');
  if (sourceTimestamp !== undefined) tick.sourceTimestamp = sourceTimestamp;
  const sources = f.get('sources');
  if (sources !== undefined) tick.sources = sources.split(',').filter((s): s is SourceName => (SOURCE_NAMES as readonly string[]).includes(s));
  for (const name of TICKER_FIELDS) {
    const value = Number(f.get(name));
    if (f.has(name) && Number.isFinite(value)) tick[name] = value;
  }
  return tick;
}

function asEntry(raw: unknown): Entry | null {
  if (!Array.isArray(raw) || raw.length !== 2 || typeof raw[0] !== 'string' || !Array.isArray(raw[1])) return null;
  return [raw[0], raw[1].map(String)];
}

/** XREAD's RESP2 reply: `[[key, [[id, fields], ...]]]` or null. */
function xreadEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply)) return [];
  return reply.flatMap((stream: unknown) => (Array.isArray(stream) && Array.isArray(stream[1]) ? entries(stream[1]) : []));
}

function entries(raw: unknown[]): Entry[] {
  const out: Entry[] = [];
  for (const item of raw) {
    const entry = asEntry(item);
    if (entry) out.push(entry);
  }
  return out;
}

/** The id just below another: the newest id that can precede it. */
function below(id: TickId): TickId {
  return id.seq > 0 ? { ms: id.ms, seq: id.seq - 1 } : { ms: id.ms - 1, seq: Number.MAX_SAFE_INTEGER };
}

function after(a: string, b: string): boolean {
  return compareTickIds(parseTickId(a)!, parseTickId(b)!) > 0;
}

function resetEvent(w: Window): ResetEvent {
  const oldest = w?.first ? decode(w.first) : null;
  return { reason: 'history_gap', oldestId: oldest?.id ?? null, oldestTimestamp: oldest?.timestamp ?? null };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

