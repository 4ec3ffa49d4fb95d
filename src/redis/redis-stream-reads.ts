import { compareTickIds, formatTickId, parseTickId, type TickId } from '../domain/tick-id';
import type { ResumePoint } from '../domain/resume';
import type { AppConfig } from '../config/app-config';
import { SOURCE_NAMES, TICKER_FIELDS, type ResetEvent, type SourceName, type Tick, type TickSource } from '../shared/wire';
import { stampedSince, type HistoryPage, type ReadAfterResult, type TickDraft } from '../stream/tick-log';
import type { RedisClients } from './redis.clients';

export const PAGE = 1000;
/**
 * Ids come from Redis' clock, timestamps from the instance that polled: a tick stamped at or
 * after `since` may carry an id this much earlier. A read by time starts here and filters by
 * timestamp; whether the window is complete is still judged at `since` (only a tick at the
 * very edge of the window, under that much skew, could be missed).
 */
const ID_CLOCK_SLACK_MS = 5_000;

export type Entry = [id: string, fields: string[]];

/** What XINFO STREAM tells about the window; null when the stream does not exist. */
export type Window = { length: number; entriesAdded: number; lastGeneratedId: TickId; first: Entry | null; last: Entry | null; floor: TickId } | null;

/**
 * The reads of the Redis Stream `<prefix>:ticks` on the command connection: the window (XINFO
 * STREAM), pages of entries, resume reads and history. The floor (the newest id that may be
 * missing) is computed from the stream itself: the id just below its first entry (everything
 * below it may have been trimmed or lost with a deleted stream), or, once the stream is empty,
 * its last generated id. No stream at all: nothing is known, every resume point is a reset.
 */
export class RedisStreamReads {
  constructor(
    private readonly clients: RedisClients,
    private readonly config: AppConfig,
    readonly streamKey: string,
  ) {}

  async readAfter(point: ResumePoint, pairs: ReadonlySet<string>): Promise<ReadAfterResult> {
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

  async history(pair: string, sinceMs: number | undefined, limit: number): Promise<HistoryPage> {
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

  /** The newest entry of each configured pair, newest pages first. */
  async latestPerPair(): Promise<Tick[]> {
    const latest = new Map<string, Tick>();
    let end = '+';
    while (latest.size < this.config.pairs.length) {
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

  async window(): Promise<Window> {
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
  async holds(id: string): Promise<boolean> {
    return (await this.range('XRANGE', id, id, 1)).length > 0;
  }

  private async range(command: 'XRANGE' | 'XREVRANGE', from: string, to: string, count: number): Promise<Entry[]> {
    const reply = await this.clients.command.call(command, this.streamKey, from, to, 'COUNT', String(count));
    return Array.isArray(reply) ? entries(reply) : [];
  }
}

export function encode(draft: TickDraft): string[] {
  const fields = ['pair', draft.pair, 'price', String(draft.price), 'timestamp', draft.timestamp, 'source', draft.source];
  if (draft.sourceTimestamp !== undefined) fields.push('sourceTimestamp', draft.sourceTimestamp);
  if (draft.sources !== undefined) fields.push('sources', draft.sources.join(','));
  for (const name of TICKER_FIELDS) {
    const value = draft[name];
    if (value !== undefined) fields.push(name, String(value));
  }
  return fields;
}

export function decode([id, fields]: Entry): Tick | null {
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
export function xreadEntries(reply: unknown): Entry[] {
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

export function resetEvent(w: Window): ResetEvent {
  const oldest = w?.first ? decode(w.first) : null;
  return { reason: 'history_gap', oldestId: oldest?.id ?? null, oldestTimestamp: oldest?.timestamp ?? null };
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
