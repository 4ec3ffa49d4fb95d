import { TICKER_FIELDS, type PairStatus, type ResetEvent, type WsMessage } from '../../../src/shared/wire';
import type { Tick } from './types';

/**
 * The client checks what arrives before it trusts it: a malformed message is dropped, it never
 * reaches the chart. The types are those of src/shared/wire.ts, but for `source`: open, so that
 * the ticks of an upstream the service adds later are delivered, not dropped.
 */
type Json = Record<string, unknown>;

/** A plain-WebSocket frame as the library reads it: the wire's, with the library's open tick. */
export type WsFrame = Exclude<WsMessage, { type: 'price' }> | ({ type: 'price' } & Tick);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function asTick(v: unknown): Tick | null {
  if (!isObject(v)) return null;
  const { id, pair, price, timestamp, sourceTimestamp, source } = v;
  if (typeof id !== 'string' || typeof pair !== 'string' || typeof timestamp !== 'string') return null;
  if (typeof price !== 'number' || !Number.isFinite(price) || price <= 0) return null;
  if (typeof source !== 'string' || source === '') return null;
  const tick: Tick = { id, pair, price, timestamp, source };
  if (typeof sourceTimestamp === 'string') tick.sourceTimestamp = sourceTimestamp;
  if (Array.isArray(v.sources)) {
    tick.sources = v.sources.filter((s): s is string => typeof s === 'string' && s !== '');
  }
  // An optional field that is not a usable number is dropped; the tick itself stays good.
  for (const name of TICKER_FIELDS) {
    const value = v[name];
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) tick[name] = value;
  }
  // A conflated delivery says how many ticks it replaces; a client that counts them needs it.
  if (typeof v.skipped === 'number' && Number.isSafeInteger(v.skipped) && v.skipped > 0) tick.skipped = v.skipped;
  return tick;
}

export function asReset(v: unknown): ResetEvent | null {
  if (!isObject(v) || v.reason !== 'history_gap') return null;
  const str = (x: unknown): string | null => (typeof x === 'string' ? x : null);
  return { reason: 'history_gap', oldestId: str(v.oldestId), oldestTimestamp: str(v.oldestTimestamp) };
}

/** A pair's stale/fresh status; null when it is not one. */
export function asPairStatus(v: unknown): PairStatus | null {
  if (!isObject(v) || typeof v.pair !== 'string' || (v.state !== 'stale' && v.state !== 'fresh') || typeof v.since !== 'string') return null;
  return { pair: v.pair, state: v.state, since: v.since };
}

export function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A plain-WebSocket frame, or null when it is none of its message types. */
export function asWsMessage(v: unknown): WsFrame | null {
  if (!isObject(v)) return null;
  if (v.type === 'price') {
    const tick = asTick(v);
    return tick ? { type: 'price', ...tick } : null;
  }
  if (v.type === 'reset') {
    const reset = asReset(v);
    return reset ? { type: 'reset', ...reset } : null;
  }
  if (v.type === 'status') {
    const status = asPairStatus(v);
    return status ? { type: 'status', ...status } : null;
  }
  if (v.type === 'error' && typeof v.code === 'string' && typeof v.message === 'string') {
    return { type: 'error', code: v.code as Extract<WsMessage, { type: 'error' }>['code'], message: v.message };
  }
  return null;
}
