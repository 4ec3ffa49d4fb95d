import type { CandleInterval } from '../../src/shared/wire';

export type ChartRange = '1H' | '24H' | '7D';
export const CHART_RANGES: readonly ChartRange[] = ['1H', '24H', '7D'];
export const DEFAULT_RANGE: ChartRange = '24H';

/**
 * What each range asks the candles endpoint for: a width that gives 60 to 170 bars, so that a
 * candle is a few pixels wide on a phone and about ten on a desktop, never a slab.
 */
export const RANGE_CANDLES: Readonly<Record<ChartRange, { interval: CandleInterval; seconds: number; limit: number }>> = {
  '1H': { interval: '1m', seconds: 60, limit: 60 },
  '24H': { interval: '15m', seconds: 900, limit: 96 },
  '7D': { interval: '1h', seconds: 3600, limit: 168 },
};

export function isChartRange(value: string | undefined): value is ChartRange {
  return (CHART_RANGES as readonly string[]).includes(value ?? '');
}
