import type { Tick } from '../../src/shared/wire';
import { isAfter } from './sdk/tick-order';

/** A line-series point; `time` in whole Unix seconds (lightweight-charts' UTCTimestamp). */
export type LinePoint = { time: number; value: number };

function secondOf(tick: Tick): number | null {
  const ms = Date.parse(tick.timestamp);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/**
 * What the chart has drawn, so that nothing is drawn twice and time only moves forward:
 * lightweight-charts needs strictly increasing times, and `update` with the last point's time
 * replaces that point. Several ticks in one second therefore merge into one point holding the
 * latest price; a tick already drawn (by id) or older than the last point is skipped.
 */
export class ChartCursor {
  private lastId: string | null = null;
  private lastTime: number | null = null;

  get drawnId(): string | null {
    return this.lastId;
  }

  /** The points for `setData`, from history oldest first; restarts the cursor. */
  load(ticks: readonly Tick[]): LinePoint[] {
    this.lastId = null;
    this.lastTime = null;
    const points: LinePoint[] = [];
    for (const tick of ticks) {
      const p = this.next(tick);
      if (!p) continue;
      if (points.at(-1)?.time === p.time) points[points.length - 1] = p;
      else points.push(p);
    }
    return points;
  }

  /** The point for `update`, or null when the tick must not be drawn. */
  next(tick: Tick): LinePoint | null {
    if (!isAfter(tick.id, this.lastId)) return null;
    const time = secondOf(tick);
    if (time === null || (this.lastTime !== null && time < this.lastTime)) return null;
    this.lastId = tick.id;
    this.lastTime = time;
    return { time, value: tick.price };
  }
}
