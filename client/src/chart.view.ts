import { CandlestickSeries, ColorType, createChart, LineSeries, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import type { Candle } from '../../src/shared/wire';
import type { Tick } from '@price-stream/client';
import { CandleCursor, ChartCursor, type CandlePoint, type LinePoint } from './chart-points';
import { formatPrice } from './format';

export type ChartMode = 'line' | 'candles';
export const CHART_MODES: readonly ChartMode[] = ['line', 'candles'];
/** The candles the chart asks for: one-minute candles, two hours of them. */
export const CHART_CANDLES = { interval: '1m', seconds: 60, limit: 120 } as const;

const linePoint = (p: LinePoint) => ({ time: p.time as UTCTimestamp, value: p.value });
const candlePoint = (p: CandlePoint) => ({ ...p, time: p.time as UTCTimestamp });

function themeColors(el: HTMLElement) {
  const css = getComputedStyle(el);
  const v = (name: string, fallback: string): string => css.getPropertyValue(name).trim() || fallback;
  return { text: v('--fg-muted', '#555'), grid: v('--grid', '#e5e5e5'), line: v('--accent', '#0f766e'), up: v('--up', '#15803d'), down: v('--down', '#b91c1c') };
}

/**
 * The chart of one pair, as a line of ticks or as candles: history (or the server's candles)
 * first with `setData`, then live ticks with `update`. Ticks that arrive while it loads wait and
 * are drawn after it, so the two join without a gap or a duplicate.
 */
export function setupChart(container: HTMLElement, title: HTMLElement) {
  const chart = createChart(container, {
    autoSize: true,
    // The logo injects a <style> element, which the CSP (style-src 'self') refuses; the
    // attribution TradingView's licence asks for is in the page footer instead.
    layout: { background: { type: ColorType.Solid, color: 'transparent' }, attributionLogo: false },
    timeScale: { timeVisible: true, secondsVisible: true },
    localization: { timeFormatter: (t: number) => new Date(t * 1000).toLocaleTimeString() },
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
  let pending: Tick[] | null = null;
  let lineCursor = new ChartCursor();
  let candleCursor = new CandleCursor(CHART_CANDLES.seconds);

  // For tests and the curious: the mode, how many points are drawn, the newest tick id or candle.
  const mark = (): void => {
    container.dataset.mode = mode;
    container.dataset.points = String(mode === 'line' ? line.data().length : candles.data().length);
    container.dataset.lastId = mode === 'line' ? (lineCursor.drawnId ?? '') : '';
    const last = candles.data().at(-1);
    container.dataset.lastCandle = mode === 'candles' && last && 'close' in last ? JSON.stringify(last) : '';
    // The label the price axis gives the newest price (the series' own formatter, the axis' too).
    const newestLine = line.data().at(-1);
    const price = mode === 'line' ? (newestLine && 'value' in newestLine ? newestLine.value : null) : last && 'close' in last ? last.close : null;
    container.dataset.axisLabel = price === null ? '' : (mode === 'line' ? line : candles).priceFormatter().format(price);
  };
  const draw = (tick: Tick): void => {
    if (mode === 'line') {
      const p = lineCursor.next(tick);
      if (p) line.update(linePoint(p));
    } else {
      const c = candleCursor.next(tick);
      if (c) candles.update(candlePoint(c));
    }
    mark();
  };
  const show = (next: ChartMode, note: string): void => {
    mode = next;
    line.applyOptions({ visible: next === 'line' });
    candles.applyOptions({ visible: next === 'candles' });
    chart.timeScale().fitContent();
    const waiting = pending ?? [];
    pending = null;
    for (const tick of waiting) draw(tick);
    mark();
    title.textContent = `${pair ?? ''}${note}`;
  };

  return {
    /** Starts showing `next`; its live ticks wait until `loadLine` or `loadCandles` brings the data. */
    begin(next: string): void {
      pair = next;
      pending = [];
      title.textContent = `${next}: loading…`;
      // The price axis (and the crosshair label) in the pair's currency, with thousands separators.
      const priceFormat = { type: 'custom' as const, minMove: 0.00000001, formatter: (p: number) => formatPrice(p, next) };
      line.applyOptions({ priceFormat });
      candles.applyOptions({ priceFormat });
    },
    loadLine(history: readonly Tick[], note = ''): void {
      lineCursor = new ChartCursor();
      line.setData(lineCursor.load(history).map(linePoint));
      candles.setData([]);
      show('line', note);
    },
    loadCandles(list: readonly Candle[], note = ''): void {
      candleCursor = new CandleCursor(CHART_CANDLES.seconds);
      candles.setData(candleCursor.load(list).map(candlePoint));
      line.setData([]);
      show('candles', note);
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
