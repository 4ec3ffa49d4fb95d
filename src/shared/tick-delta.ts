/**
 * Per-pair deltas (opt-in `delta`, docs/api.md "Deltas"): a tick as only what changed since the
 * previous tick of its pair. Shared by the server (which encodes a delta once per tick) and the
 * client library (which applies it). No Node or Nest imports: the client bundles this file.
 *
 * A delta is a JSON array: the pair, then one value per field of DELTA_FIELDS in that order,
 * trailing unchanged values left out. A value is
 * - `0`: unchanged (no field of a tick is ever 0: prices and figures are > 0);
 * - `null`: the field is gone from this tick;
 * - otherwise the field's new value, except for a time (`timestamp`, `sourceTimestamp`) that
 *   reads back exactly from milliseconds (`Date#toISOString`), as the base's does: then the
 *   milliseconds after the base's (never 0; negative is earlier).
 * "Changed" means not the same JSON value (numbers and strings compared exactly, `sources` item by item).
 */
import type { Tick } from './wire';

/** The fields a delta carries, by position after the pair (the most changing first). */
export const DELTA_FIELDS = ['price', 'timestamp', 'sourceTimestamp', 'bid', 'ask', 'volume24h', 'open24h', 'high24h', 'low24h', 'source', 'sources'] as const;
type DeltaField = (typeof DELTA_FIELDS)[number];

const TIMES: ReadonlySet<DeltaField> = new Set(['timestamp', 'sourceTimestamp']);

export type DeltaValue = number | string | string[] | null;
/** `[pair, ...values]`; the tick's id travels beside it (SSE `id:`, WebSocket `id`, Socket.IO's first argument). */
export type TickDelta = [string, ...DeltaValue[]];

/** An ISO time as milliseconds when it reads back exactly (`Date#toISOString`), else NaN. */
function exactMs(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? ms : NaN;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Whether `tick` can go as a delta: every figure it has is > 0, as the encoding assumes (0 says
 * "unchanged"). The sources keep only positive figures today; a tick with another goes in full.
 */
export function deltaFits(tick: Tick): boolean {
  for (const field of DELTA_FIELDS) {
    const value = tick[field];
    if (typeof value === 'number' && !(value > 0)) return false;
  }
  return true;
}

/** `tick` as what changed since `base` (the previous tick of the same pair). */
export function tickDelta(base: Tick, tick: Tick): TickDelta {
  const out: TickDelta = [tick.pair];
  let last = 0;
  for (const field of DELTA_FIELDS) {
    const was = base[field];
    const now = tick[field];
    let value: DeltaValue;
    if (same(was, now)) value = 0;
    else if (now === undefined) value = null;
    else if (TIMES.has(field) && typeof was === 'string') {
      const diff = exactMs(now as string) - exactMs(was);
      value = Number.isFinite(diff) && diff !== 0 ? diff : (now as string);
    } else value = now as DeltaValue;
    out.push(value);
    if (value !== 0) last = out.length;
  }
  out.length = Math.max(1, last);
  return out;
}

/**
 * The tick `delta` makes of `base` (the last tick of the pair this connection received), with
 * `id`; null when the delta is not one (wrong pair, wrong types): never a wrong tick.
 */
export function applyDelta<T extends { readonly pair: string }>(base: T, id: string, delta: unknown): T | null {
  if (!Array.isArray(delta) || delta[0] !== base.pair || delta.length > DELTA_FIELDS.length + 1) return null;
  const was = base as Record<string, unknown>;
  const tick: Record<string, unknown> = { ...base, id };
  delete tick.skipped;
  for (const [i, field] of DELTA_FIELDS.entries()) {
    const value: unknown = delta[i + 1];
    if (value === 0 || i + 1 >= delta.length) continue;
    if (value === null) {
      if (field === 'price' || field === 'timestamp' || field === 'source') return null;
      delete tick[field];
    } else if (TIMES.has(field)) {
      const ref = was[field];
      if (typeof value === 'string') tick[field] = value;
      else if (typeof value === 'number' && typeof ref === 'string') {
        const ms = Date.parse(ref) + value;
        if (!Number.isFinite(ms)) return null;
        tick[field] = new Date(ms).toISOString();
      } else return null;
    } else if (field === 'source') {
      if (typeof value !== 'string') return null;
      tick[field] = value;
    } else if (field === 'sources') {
      if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) return null;
      tick[field] = value;
    } else {
      if (typeof value !== 'number' || !(value > 0)) return null;
      tick[field] = value;
    }
  }
  return tick as T;
}
