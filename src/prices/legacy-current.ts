import { legacyAsset, type LegacyTick, type Tick } from '../shared/wire';

export type LegacyCurrent = LegacyTick;

/** `GET /api/price/current` of the replaced Bitcoin tracker: the tick with its symbol and name. */
export function legacyCurrent(tick: Tick): LegacyCurrent {
  return { ...tick, ...legacyAsset(tick.pair) };
}
