import type { Tick } from '../../src/shared/wire';
import { ChartCursor } from './chart-points';

const S = 1_763_758_800; // 2025-11-21T21:00:00Z in seconds
const tick = (id: string, atMs: number, price: number): Tick => ({
  id,
  pair: 'BTC-USD',
  price,
  timestamp: new Date(atMs).toISOString(),
  source: 'simulated',
});

describe(ChartCursor.name, () => {
  it('merges ticks of the same second into one point with the latest price when loading history', () => {
    const c = new ChartCursor();
    const points = c.load([tick('1-0', S * 1000 + 100, 1), tick('1-1', S * 1000 + 900, 2), tick('2-0', (S + 1) * 1000, 3)]);
    expect(points).toEqual([
      { time: S, value: 2 },
      { time: S + 1, value: 3 },
    ]);
    expect(c.drawnId).toBe('2-0');
  });

  it('skips a live tick already drawn from history when a resume replays it', () => {
    const c = new ChartCursor();
    c.load([tick('5-0', S * 1000, 1)]);
    expect(c.next(tick('5-0', S * 1000, 1))).toBeNull();
    expect(c.next(tick('4-9', S * 1000, 1))).toBeNull();
    expect(c.next(tick('6-0', (S + 2) * 1000, 7))).toEqual({ time: S + 2, value: 7 });
  });

  it('gives the same time again for a tick in the last second so that update replaces the point', () => {
    const c = new ChartCursor();
    c.load([tick('5-0', S * 1000 + 10, 1)]);
    expect(c.next(tick('5-1', S * 1000 + 500, 2))).toEqual({ time: S, value: 2 });
  });

  it('skips a tick whose time is before the last point even when its id is newer', () => {
    const c = new ChartCursor();
    c.load([tick('5-0', (S + 10) * 1000, 1)]);
    expect(c.next(tick('6-0', S * 1000, 2))).toBeNull();
    expect(c.drawnId).toBe('5-0');
  });

  it('starts afresh when history is loaded again after a reset', () => {
    const c = new ChartCursor();
    c.load([tick('9-0', (S + 10) * 1000, 1)]);
    expect(c.load([tick('1-0', S * 1000, 5)])).toEqual([{ time: S, value: 5 }]);
  });
});
