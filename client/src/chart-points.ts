import type { Tick } from '@price-stream/client';
import type { Candle } from '../../src/shared/wire';

function secondOf(tick: Tick): number | null {
  const ms = Date.parse(tick.timestamp);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/** A candlestick point; `time` in whole Unix seconds, the start of the candle. */
export type CandlePoint = { time: number; open: number; high: number; low: number; close: number };

/**
 * The live end of a candle chart: loads the server's candles, then folds each new tick into the
 * last candle (or opens the next one). A tick the loaded candles may already hold (it arrived
 * while they loaded) is harmless: high and low do not move, and the close ends on the newest tick.
 */
export class CandleCursor {
  private last: CandlePoint | null = null;
  private readonly intervalSec: number;

  constructor(intervalSec: number) {
    this.intervalSec = intervalSec;
  }

  load(candles: readonly Candle[]): CandlePoint[] {
    const points: CandlePoint[] = [];
    for (const c of candles) {
      const ms = Date.parse(c.time);
      if (!Number.isFinite(ms)) continue;
      const time = Math.floor(ms / 1000);
      if (points.length > 0 && time <= (points.at(-1)?.time ?? 0)) continue;
      points.push({ time, open: c.open, high: c.high, low: c.low, close: c.close });
    }
    this.last = points.at(-1) ?? null;
    return points;
  }

  /** The candle for `update` (the last one changed, or a new one), or null for a tick older than the last candle. */
  next(tick: Tick): CandlePoint | null {
    const sec = secondOf(tick);
    if (sec === null) return null;
    const time = Math.floor(sec / this.intervalSec) * this.intervalSec;
    const last = this.last;
    if (last && time < last.time) return null;
    const candle =
      last && time === last.time
        ? { ...last, high: Math.max(last.high, tick.price), low: Math.min(last.low, tick.price), close: tick.price }
        : { time, open: tick.price, high: tick.price, low: tick.price, close: tick.price };
    this.last = candle;
    return candle;
  }
}
