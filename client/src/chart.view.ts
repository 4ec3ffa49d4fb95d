import { ColorType, createChart, LineSeries, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import type { Tick } from '../../src/shared/wire';
import { ChartCursor, type LinePoint } from './chart-points';

const point = (p: LinePoint) => ({ time: p.time as UTCTimestamp, value: p.value });

function themeColors(el: HTMLElement) {
  const css = getComputedStyle(el);
  const v = (name: string, fallback: string): string => css.getPropertyValue(name).trim() || fallback;
  return { text: v('--fg-muted', '#555'), grid: v('--grid', '#e5e5e5'), line: v('--accent', '#0f766e') };
}

/**
 * The chart of one pair: history first with `setData`, then live ticks with `update`. Ticks that
 * arrive while history loads wait and are drawn after it, so the two join without a gap or a
 * duplicate (ChartCursor skips what history already holds).
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
  const series: ISeriesApi<'Line'> = chart.addSeries(LineSeries, { lineWidth: 2 });
  const applyTheme = (): void => {
    const c = themeColors(container);
    chart.applyOptions({ layout: { textColor: c.text }, grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } } });
    series.applyOptions({ color: c.line });
  };
  applyTheme();
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);

  let pair: string | null = null;
  let pending: Tick[] | null = null;
  let cursor = new ChartCursor();

  // For tests and the curious: how many points are drawn, and the newest tick id among them.
  const mark = (): void => {
    container.dataset.points = String(series.data().length);
    container.dataset.lastId = cursor.drawnId ?? '';
  };
  const draw = (tick: Tick): void => {
    const p = cursor.next(tick);
    if (!p) return;
    series.update(point(p));
    mark();
  };

  return {
    /** Starts showing `next`; its live ticks wait until `load` brings the history. */
    begin(next: string): void {
      pair = next;
      pending = [];
      title.textContent = `${next}: loading history…`;
    },
    load(history: readonly Tick[], note = ''): void {
      cursor = new ChartCursor();
      const points = cursor.load(history);
      series.setData(points.map(point));
      chart.timeScale().fitContent();
      const waiting = pending ?? [];
      pending = null;
      for (const tick of waiting) draw(tick);
      mark();
      title.textContent = `${pair ?? ''}${note}`;
    },
    push(tick: Tick): void {
      if (tick.pair !== pair) return;
      if (pending) pending.push(tick);
      else draw(tick);
    },
    get pair(): string | null {
      return pair;
    },
  };
}
