import { Injectable } from '@nestjs/common';
import { CandleStore } from '../candles/candle-store';
import { gapsOf, rollUp } from '../candles/minute';
import { CANDLE_INTERVALS, type Candle, type CandleInterval, type CandlesResponse } from '../shared/wire';

/** The window of a candles request: bucket starts, `to` inclusive. */
export type CandleWindow = { fromMs?: number; toMs?: number; limit: number };

/** A candles answer serialised once, with its ETag. */
export type CandlesBody = { json: string; etag: string };

/**
 * What the kept closed parts of answers may hold, by their serialised size (each is also kept as
 * candle objects and in its last whole answer: about three times that): requests with varying
 * windows cannot grow it past this. 1000 one-minute candles are about 190 KB of JSON.
 */
const CACHE_JSON_BYTES = 8 * 1024 * 1024;

/** FNV-1a over a string, base 36: a short, stable ETag of what an answer is made of. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/**
 * Candles from the candle store: one-minute candles as they are, wider ones rolled up on request.
 * The closed part of an answer (every bucket before the open one) never changes until the pair's
 * generation does (a backfill, a late tick), so it is computed once and kept; only the open
 * bucket is rolled up again per request.
 */
@Injectable()
export class CandlesService {
  private readonly closedCache = new Map<string, { candles: Candle[]; json: string; last?: CandlesBody }>();
  private cachedBytes = 0;

  constructor(private readonly store: CandleStore) {}

  /** The serialised size of the kept closed parts (bounded by CACHE_JSON_BYTES). */
  get cacheBytes(): number {
    return this.cachedBytes;
  }

  /** The window asked for, in bucket starts: `limit` buckets ending at `to` (default now), or starting at `from`. */
  static window(interval: CandleInterval, w: CandleWindow, nowMs: number): { fromMs: number; toMs: number } {
    const size = CANDLE_INTERVALS[interval];
    const floor = (ms: number) => Math.floor(ms / size) * size;
    const nowBucket = floor(nowMs);
    if (w.fromMs !== undefined) {
      const fromMs = floor(w.fromMs);
      const last = fromMs + (w.limit - 1) * size;
      return { fromMs, toMs: Math.min(last, w.toMs === undefined ? nowBucket : floor(w.toMs)) };
    }
    const toMs = w.toMs === undefined ? nowBucket : Math.min(floor(w.toMs), nowBucket);
    return { fromMs: toMs - (w.limit - 1) * size, toMs };
  }

  candles(pair: string, interval: CandleInterval, w: CandleWindow, nowMs = Date.now()): CandlesResponse {
    return JSON.parse(this.body(pair, interval, w, nowMs).json) as CandlesResponse;
  }

  body(pair: string, interval: CandleInterval, w: CandleWindow, nowMs = Date.now()): CandlesBody {
    const size = CANDLE_INTERVALS[interval];
    const { fromMs, toMs } = CandlesService.window(interval, w, nowMs);
    const openFrom = Math.floor(nowMs / size) * size;
    const closedEnd = Math.min(toMs + size, openFrom);
    const generation = this.store.book.generation(pair);
    const key = `${pair}|${interval}|${fromMs}|${closedEnd}|${generation}`;
    let cached = this.closedCache.get(key);
    if (!cached) {
      const candles = fromMs < closedEnd ? rollUp(this.store.book.range(pair, fromMs, closedEnd), size, openFrom) : [];
      cached = { candles, json: candles.map((c) => JSON.stringify(c)).join(',') };
      // Oldest first out, until the new one fits.
      for (const [oldKey, old] of this.closedCache) {
        if (this.cachedBytes + cached.json.length <= CACHE_JSON_BYTES) break;
        this.closedCache.delete(oldKey);
        this.cachedBytes -= old.json.length;
      }
      this.closedCache.set(key, cached);
      this.cachedBytes += cached.json.length;
    }
    const open = toMs >= openFrom ? rollUp(this.store.book.range(pair, openFrom, openFrom + size), size, openFrom) : [];
    const last = open[0];
    const etag = `"c-${fnv(`${key}|${toMs}|${cached.candles.length}|${last ? `${last.close}|${last.high}|${last.low}|${last.ticks}|${last.last}` : ''}`)}"`;
    // The open candle unchanged since the last answer of this window (no tick since): the same bytes.
    if (cached.last?.etag === etag) return cached.last;
    const candles = open.length > 0 ? [...cached.candles, ...open] : cached.candles;
    const items = [cached.json, ...open.map((c) => JSON.stringify(c))].filter((s) => s !== '').join(',');
    const head = JSON.stringify({ pair, interval, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() } satisfies Omit<CandlesResponse, 'candles' | 'gaps'>);
    const json = `${head.slice(0, -1)},"candles":[${items}],"gaps":${JSON.stringify(gapsOf(candles, size, fromMs, toMs))}}`;
    cached.last = { json, etag };
    return cached.last;
  }
}
