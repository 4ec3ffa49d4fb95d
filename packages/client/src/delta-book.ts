import { applyDelta } from '../../../src/shared/tick-delta';
import type { Tick } from './types';
import { asTick } from './wire-guards';

/** Why a feed ends when a delta cannot be applied: the connection comes back and resumes from the last id. */
export const DELTA_WITHOUT_BASE = 'delta without its base tick';

/**
 * The last tick of each pair one connection delivered (`delta`: docs/api.md "Deltas"): the base
 * of the pair's next delta. One per connection, as the server's side is: a new connection starts
 * every pair in full. A delta it cannot apply (no tick of its pair yet, or one that is not a
 * delta of it) gives null, never a wrong tick: the feed then ends the connection and the client
 * resumes from the last id, which brings the missed tick in full.
 */
export class DeltaBook {
  private readonly last = new Map<string, Tick>();

  /** A full tick: the base of its pair's next delta. */
  full(tick: Tick): Tick {
    this.last.set(tick.pair, tick);
    return tick;
  }

  /** The tick a delta makes, or null when it makes none. */
  apply(id: unknown, delta: unknown): Tick | null {
    if (typeof id !== 'string' || !Array.isArray(delta) || typeof delta[0] !== 'string') return null;
    const base = this.last.get(delta[0]);
    const tick = base === undefined ? null : asTick(applyDelta(base, id, delta));
    if (tick !== null) this.last.set(tick.pair, tick);
    return tick;
  }

  /** After a reset the server starts every pair in full again. */
  clear(): void {
    this.last.clear();
  }
}
