import { CandlestickSeries, ColorType, createChart, LineSeries, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import type { Tick } from '@price-stream/client';
import type { Candle } from '../../src/shared/wire';
import { CandleCursor, type CandlePoint } from './chart-points';
import { RANGE_CANDLES, type ChartRange } from './chart-range';
import { formatPrice } from './format';

export type ChartMode = 'line' | 'candles';
export const CHART_MODES: readonly ChartMode[] = ['line', 'candles'];

const linePoint = (p: CandlePoint) => ({ time: p.time as UTCTimestamp, value: p.close });
const candlePoint = (p: CandlePoint) => ({ ...p, time: p.time as UTCTimestamp });

function themeColors(el: HTMLElement) {
  const css = getComputedStyle(el);
  const v = (name: string, fallback: string): string => css.getPropertyValue(name).trim() || fallback;
  return { text: v('--fg-muted', '#555'), grid: v('--grid', '#e5e5e5'), line: v('--accent', '#0f766e'), up: v('--up', '#15803d'), down: v('--down', '#b91c1c') };
}

/**
 * The chart of one pair over a range (1H, 24H, 7D) of the server's candles, drawn as a line of
 * their closes or as candles: loaded with `setData`, then every live tick updates the last
 * candle (or opens the next) with `update`. Ticks that arrive while it loads wait and are drawn
 * after it, so the two join without a gap or a duplicate.
 */
export function setupChart(container: HTMLElement, title: HTMLElement) {
  const chart = createChart(container, {
    autoSize: true,
    // The logo injects a <style> element, which the CSP (style-src 'self') refuses; the
    // attribution TradingView's licence asks for is in the page footer instead.
    layout: { background: { type: ColorType.Solid, color: 'transparent' }, attributionLogo: false },
    timeScale: { timeVisible: true, secondsVisible: false, minBarSpacing: 1 },
    localization: { timeFormatter: (t: number) => new Date(t * 1000).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) },
  });
  const line: ISeriesApi<'Line'> = chart.addSeries(LineSeries, { lineWidth: 2 });
  const candles: ISeriesApi<'Candlestick'> = chart.addSeries(CandlestickSeries, { visible: false });
  const applyTheme = (): void => {
    const c = themeColors(container);
    chart.applyOptions({ layout: { textColor: c.text }, grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } } });
    line.applyOptions({ color: c.line });
    candles.applyOptions({ upColor: c.up, downColor: c.down, borderUpColor: c.up, borderDownColor: c.down, wickUpColor: c.up, wickDownColor: c.down });
  };
  applyTheme();
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);

  let pair: string | null = null;
  let mode: ChartMode = 'line';
  let range: ChartRange = '24H';
  let pending: Tick[] | null = null;
  let cursor = new CandleCursor(RANGE_CANDLES[range].seconds);

  // For tests and the curious: mode, range, candles drawn, the newest one, the visible span, the bar width.
  const mark = (): void => {
    container.dataset.mode = mode;
    container.dataset.range = range;
    const data = candles.data();
    container.dataset.points = String(data.length);
    const last = data.at(-1);
    container.dataset.lastCandle = last && 'close' in last ? JSON.stringify(last) : '';
    const first = data[0];
    container.dataset.spanSeconds = first && last ? String(Number(last.time) - Number(first.time)) : '0';
    container.dataset.barSpacing = String(Math.round(chart.timeScale().options().barSpacing * 10) / 10);
    // The label the price axis gives the newest price (the series' own formatter, the axis' too).
    container.dataset.axisLabel = last && 'close' in last ? (mode === 'line' ? line : candles).priceFormatter().format(last.close) : '';
  };
  // The time scale applies a new visible range at the next frame: mark what it settled on.
  chart.timeScale().subscribeVisibleLogicalRangeChange(() => mark());
  const draw = (tick: Tick): void => {
    const c = cursor.next(tick);
    if (c) {
      candles.update(candlePoint(c));
      line.update(linePoint(c));
    }
    mark();
  };
  const show = (): void => {
    line.applyOptions({ visible: mode === 'line' });
    candles.applyOptions({ visible: mode === 'candles' });
    mark();
  };

  return {
    /** Starts showing `next` over `nextRange`; its live ticks wait until `load` brings the candles. */
    begin(next: string, nextRange: ChartRange): void {
      pair = next;
      range = nextRange;
      pending = [];
      title.textContent = `${next}: loading…`;
      // The price axis (and the crosshair label) in the pair's currency, with thousands separators.
      const priceFormat = { type: 'custom' as const, minMove: 0.00000001, formatter: (p: number) => formatPrice(p, next) };
      line.applyOptions({ priceFormat });
      candles.applyOptions({ priceFormat });
    },
    load(list: readonly Candle[], note = ''): void {
      cursor = new CandleCursor(RANGE_CANDLES[range].seconds);
      const points = cursor.load(list);
      candles.setData(points.map(candlePoint));
      line.setData(points.map(linePoint));
      // The whole range at once, however much of it has data: bars are as wide at every range
      // whether a day of history exists or a minute (the rest stays empty, not stretched).
      const { limit } = RANGE_CANDLES[range];
      chart.timeScale().setVisibleLogicalRange({ from: points.length - limit - 0.5, to: points.length - 0.5 });
      const waiting = pending ?? [];
      pending = null;
      for (const tick of waiting) draw(tick);
      show();
      title.textContent = `${pair ?? ''}${note}`;
    },
    /** Line or candles: the same data, so no reload. */
    setMode(next: ChartMode): void {
      mode = next;
      show();
    },
    push(tick: Tick): void {
      if (tick.pair !== pair) return;
      if (pending) pending.push(tick);
      else draw(tick);
    },
    /** Re-reads the palette (the reader picked another theme). */
    retheme: applyTheme,
    get pair(): string | null {
      return pair;
    },
  };
}
