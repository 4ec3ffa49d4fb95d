import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { CANDLE_INTERVALS, type Candle, type CandleInterval, type CandlesResponse, type Tick } from '../shared/wire';
import { PriceStreamService } from '../stream/price-stream.service';

/** OHLC candles of `intervalMs` from ticks oldest first; an interval without a tick has no candle. */
export function buildCandles(ticks: readonly Tick[], intervalMs: number): Candle[] {
  const candles: Candle[] = [];
  let start = Number.NaN;
  let current: Candle | undefined;
  for (const tick of ticks) {
    const ms = Date.parse(tick.timestamp);
    if (!Number.isFinite(ms)) continue;
    const bucket = Math.floor(ms / intervalMs) * intervalMs;
    if (current && bucket === start) {
      current.high = Math.max(current.high, tick.price);
      current.low = Math.min(current.low, tick.price);
      current.close = tick.price;
      current.ticks += 1;
      continue;
    }
    start = bucket;
    current = { time: new Date(bucket).toISOString(), open: tick.price, high: tick.price, low: tick.price, close: tick.price, ticks: 1 };
    candles.push(current);
  }
  return candles;
}

/** Candles from the history window: the same in memory and with Redis, since both serve `history`. */
@Injectable()
export class CandlesService {
  constructor(
    private readonly stream: PriceStreamService,
    private readonly config: AppConfig,
  ) {}

  /** The last `limit` intervals up to now (the current one included), oldest first. */
  async candles(pair: string, interval: CandleInterval, limit: number, nowMs = Date.now()): Promise<CandlesResponse> {
    const intervalMs = CANDLE_INTERVALS[interval];
    const fromMs = (Math.floor(nowMs / intervalMs) - (limit - 1)) * intervalMs;
    // The window never holds more than HISTORY_SIZE ticks, so this reads all of them from fromMs.
    const page = await this.stream.history(pair, fromMs, this.config.historySize);
    return { pair, interval, complete: page.complete, candles: buildCandles(page.ticks, intervalMs).slice(-limit) };
  }
}
