import { withDeadline } from '../util/deadline';
import { Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { Subject } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
import { newerId } from '../domain/tick-id';
import type { AppConfig } from '../config/app-config';
import type { ResetEvent, Tick } from '../shared/wire';
import { TickLog, type Confirmation, type HistoryPage, type LogStats, type ReadAfterResult, type TickDraft } from '../stream/tick-log';
import type { RedisClients } from './redis.clients';
import { BatchedReads } from './batched-reads';
import { encode, message, RedisStreamReads } from './redis-stream-reads';
import { RedisTickTail } from './redis-tick-tail';

/**
 * XADD, then trim by age, in one script so that the two cannot be split by a failure. Both trims
 * cut a prefix of the stream (`~` only makes them cut less, in whole nodes); entries are never
 * deleted from the middle. The stream is therefore always a contiguous suffix of everything ever
 * appended to it, which is what makes its first entry a reliable floor (see RedisStreamReads.window).
 *
 * Redis keeps a stream's ids increasing, but only while the stream exists. When it was lost (a
 * flush, a failover to an empty replica) its next id is the clock's again: within the
 * millisecond of the last tick before (the ticks of one poll share one) or behind it (a clock
 * that went back), subscribers would hold an id at or after the new tick's and take it for one
 * they had. So where the stream is gone and the clock is not past `floor` (the newest id this
 * instance appended or read), the tick gets the id right after it.
 * ARGV: MAXLEN, HISTORY_TTL_MS, floor ('' for none), field, value, ...
 */
const APPEND = `
local at = '*'
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local fms, fseq = string.match(ARGV[3], '^(%d+)-(%d+)$')
  if fms and now <= tonumber(fms) then at = fms .. '-' .. string.format('%.0f', tonumber(fseq) + 1) end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], at, unpack(ARGV, 4))
local ms = tonumber(string.match(id, '^(%d+)-'))
redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', ms - tonumber(ARGV[2])))
return id`;

/** readAfter is awaited while a subscriber's live ticks are held: it must end. */
export const READ_TIMEOUT_MS = 5_000;

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
 * are the ticks' ids. Three parts: this class writes (XADD and trim in one script) and shares
 * confirmations; RedisStreamReads (redis-stream-reads.ts) reads the window, resumes and history;
 * RedisTickTail (redis-tick-tail.ts) tails the stream on a dedicated connection and emits each
 * entry into its pair's channel (TickLog.commit), so every subscriber on every instance sees the same ids in the same order;
 * the ticks this instance appends reach its subscribers through the tail too.
 */
export class RedisTickLog extends TickLog implements BeforeApplicationShutdown {
  private readonly logger = new Logger(RedisTickLog.name);
  private readonly gapSubject = new Subject<ResetEvent>();
  override readonly gaps$ = this.gapSubject.asObservable();
  private readonly confirmed = new Subject<Confirmation>();
  override readonly confirmations$ = this.confirmed.asObservable();
  readonly streamKey: string;
  private readonly confirmedKey: string;
  private readonly refreshMs: number;
  private readonly reads: RedisStreamReads;
  /** Resume reads, one per resume point until the next commit (a reconnect storm's joins share them). */
  private readonly resumes: BatchedReads;
  private readonly tail: RedisTickTail;
  private stopped = false;
  private refreshTimer: NodeJS.Timeout | null = null;
  private cachedStats: LogStats = { size: 0, oldestId: null, newestId: null };
  /** The newest id this instance appended: with the newest it read, the floor of an append (APPEND). */
  private appended: string | null = null;

  constructor(
    private readonly clients: RedisClients,
    private readonly config: AppConfig,
    options: RedisTickLogOptions = {},
  ) {
    super();
    this.streamKey = clients.key('ticks');
    this.confirmedKey = clients.key('confirmed');
    this.refreshMs = options.refreshMs ?? Math.min(2000, Math.floor(config.staleAfterMs / 4));
    this.reads = new RedisStreamReads(clients, config, this.streamKey);
    this.resumes = new BatchedReads((point, pairs) => this.reads.readAfter(point, pairs));
    this.tail = new RedisTickTail(clients, this.reads, options.blockMs ?? 1000, {
      // Where every committed tick leaves the log, for this instance's subscribers.
      emit: (tick) => {
        this.resumes.committed();
        this.commit(tick);
      },
      gap: (reset) => {
        this.resumes.committed();
        this.gapSubject.next(reset);
      },
      lag: options.onTailLag,
    });
  }

  async append(draft: TickDraft): Promise<Tick> {
    const fields = encode(draft);
    const floor = this.newestKnown();
    const id = await this.clients.command.eval(APPEND, 1, this.streamKey, String(this.config.historySize), String(this.config.historyTtlMs), floor ?? '', ...fields);
    if (typeof id !== 'string') throw new Error('XADD returned no id');
    this.appended = newerId(this.appended, id);
    this.resumes.committed(); // not needed for a join's completeness (the tail's commit is), but a read after an append shows it
    return { id, ...draft };
  }

  /**
   * The newest tick of each configured pair in the window. Also starts the tail from the newest
   * entry, so that nothing committed after this read is missed.
   */
  async latestPerPair(): Promise<Tick[]> {
    try {
      const ticks = await withDeadline(this.tail.snapshot(), READ_TIMEOUT_MS, 'Redis: reading the latest ticks');
      this.tail.markRestored();
      return ticks;
    } catch (err) {
      this.logger.warn({ msg: 'could not read the latest ticks; they come with the tail once Redis answers', error: message(err) });
      return [];
    } finally {
      this.start();
    }
  }

  readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
    return withDeadline(this.resumes.readAfter(point, pairs), READ_TIMEOUT_MS, 'Redis: reading the history window');
  }

  history(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage> {
    return withDeadline(this.reads.history(pair, sinceMs, limit), READ_TIMEOUT_MS, 'Redis: reading history');
  }

  stats(): LogStats {
    return { ...this.cachedStats, newestId: newerId(this.cachedStats.newestId, this.tail.lastId) };
  }

  /** The newest id this instance appended or read: no later append may come at or before it. */
  private newestKnown(): string | null {
    return newerId(this.stats().newestId, this.appended);
  }

  override shareConfirmation({ pair, atMs }: Confirmation): void {
    this.clients.command.hset(this.confirmedKey, pair, String(atMs)).catch((err: unknown) => {
      this.logger.debug({ msg: 'could not share a confirmation', pair, error: message(err) });
    });
  }

  /** Starts the tail and the periodic refresh (latestPerPair does it at start-up). */
  start(): void {
    if (this.tail.started || this.stopped) return;
    this.tail.start();
    this.refreshTimer = setInterval(() => void this.refresh(), this.refreshMs);
    this.refreshTimer.unref();
    void this.refresh();
  }

  /**
   * Resolves true once the tail has delivered the newest entry there was when called (a new
   * leader calls it so that its price dedup starts from the stream's latest ticks).
   */
  override catchUp(timeoutMs?: number): Promise<boolean> {
    return this.tail.catchUp(timeoutMs);
  }

  /** Stops the tail; its pending XREAD ends when RedisClients closes the connection. */
  beforeApplicationShutdown(): void {
    this.stopped = true;
    this.tail.stop();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.endCommits();
    this.gapSubject.complete();
    this.confirmed.complete();
  }

  /** Confirmations of unchanged prices (from the leader) and the window's stats, every refreshMs. */
  private async refresh(): Promise<void> {
    if (this.stopped || !this.clients.isConnected) return;
    try {
      const [confirmed, w] = await Promise.all([this.clients.command.hgetall(this.confirmedKey), this.reads.window()]);
      for (const [pair, raw] of Object.entries(confirmed)) {
        const atMs = Number(raw);
        if (this.config.pairSet.has(pair) && Number.isFinite(atMs)) this.confirmed.next({ pair, atMs });
      }
      this.cachedStats = { size: w?.length ?? 0, oldestId: w?.first?.[0] ?? null, newestId: w?.last?.[0] ?? null };
    } catch (err) {
      this.logger.debug({ msg: 'refresh failed', error: message(err) });
    }
  }
}
