import type Redis from 'ioredis';
import type { Minute, MinuteSource } from './minute';

const SOURCES: readonly MinuteSource[] = ['live', 'kraken', 'coinbase', 'simulated'];

/** A minute as a hash value: `[start, open, high, low, close, ticks, firstMs, lastMs, source]`. */
export function encodeMinute(m: Minute): string {
  return JSON.stringify([m.start, m.open, m.high, m.low, m.close, m.ticks, m.firstMs, m.lastMs, m.source]);
}

export function decodeMinute(raw: string): Minute | null {
  try {
    const v = JSON.parse(raw) as unknown;
    if (!Array.isArray(v) || v.length !== 9) return null;
    const [start, open, high, low, close, ticks, firstMs, lastMs, source] = v as unknown[];
    const nums = [start, open, high, low, close, ticks];
    if (!nums.every((n) => typeof n === 'number' && Number.isFinite(n))) return null;
    const optional = (x: unknown): x is number | null => x === null || (typeof x === 'number' && Number.isFinite(x));
    if (!optional(firstMs) || !optional(lastMs) || !SOURCES.includes(source as MinuteSource)) return null;
    return { start, open, high, low, close, ticks, firstMs, lastMs, source } as Minute;
  } catch {
    return null;
  }
}

/**
 * The shared copy of the one-minute candles with REDIS_URL: one hash per pair,
 * `<prefix>:candles:<pair>` (field: the minute's start in ms), and a generation counter per pair,
 * `<prefix>:candles-gen:<pair>`, raised whenever minutes other than the newest are written (a
 * backfill), so that the other instances read the pair again.
 */
export class RedisCandles {
  constructor(
    private readonly redis: Redis,
    private readonly key: (name: string) => string,
  ) {}

  private hashKey(pair: string): string {
    return this.key(`candles:${pair}`);
  }

  private genKey(pair: string): string {
    return this.key(`candles-gen:${pair}`);
  }

  async load(pair: string): Promise<Minute[]> {
    const all = await this.redis.hgetall(this.hashKey(pair));
    const out: Minute[] = [];
    for (const raw of Object.values(all)) {
      const m = decodeMinute(raw);
      if (m) out.push(m);
    }
    return out.sort((a, b) => a.start - b.start);
  }

  async write(pair: string, minutes: readonly Minute[], bumpGeneration: boolean): Promise<void> {
    if (minutes.length === 0) return;
    const multi = this.redis.multi().hset(this.hashKey(pair), ...minutes.flatMap((m) => [String(m.start), encodeMinute(m)]));
    if (bumpGeneration) multi.incr(this.genKey(pair));
    await multi.exec();
  }

  async generations(pairs: readonly string[]): Promise<number[]> {
    if (pairs.length === 0) return [];
    const values = await this.redis.mget(...pairs.map((p) => this.genKey(p)));
    return values.map((v) => Number(v ?? 0));
  }

  /** Deletes the minutes older than `floorMs`. */
  async prune(pair: string, floorMs: number): Promise<number> {
    const fields = await this.redis.hkeys(this.hashKey(pair));
    const old = fields.filter((f) => Number(f) < floorMs);
    if (old.length === 0) return 0;
    return this.redis.hdel(this.hashKey(pair), ...old);
  }
}
