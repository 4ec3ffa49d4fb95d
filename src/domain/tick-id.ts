/**
 * Tick ids have the form of a Redis Streams id, `<milliseconds>-<sequence>`, so that a
 * Redis-backed deployment can use Redis' own ids. They are compared numerically.
 */
export type TickId = { ms: number; seq: number };

const ID_PATTERN = /^(\d{1,15})-(\d{1,15})$/;

export function parseTickId(raw: string): TickId | null {
  const m = ID_PATTERN.exec(raw);
  if (!m) return null;
  const ms = Number(m[1]);
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return null;
  return { ms, seq };
}

export function formatTickId(id: TickId): string {
  return `${id.ms}-${id.seq}`;
}

export function compareTickIds(a: TickId, b: TickId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

/** Hands out strictly increasing ids, taking the clock when it moves forward and a sequence otherwise. */
export class TickIdGenerator {
  constructor(private last: TickId) {}

  next(nowMs: number): TickId {
    this.last = nowMs > this.last.ms ? { ms: nowMs, seq: 0 } : { ms: this.last.ms, seq: this.last.seq + 1 };
    return this.last;
  }
}

/**
 * `a > b` for canonical id strings (no leading zeros), without parsing: digit strings of equal
 * length compare like numbers. This sits on the per-subscriber hot path.
 */
export function idAfter(a: string, b: string): boolean {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  if (da !== db) return da > db;
  const msA = a.slice(0, da);
  const msB = b.slice(0, db);
  if (msA !== msB) return msA > msB;
  const seqA = a.slice(da + 1);
  const seqB = b.slice(db + 1);
  return seqA.length !== seqB.length ? seqA.length > seqB.length : seqA > seqB;
}

/** The later of two canonical id strings, either of which may be missing. */
export function newerId(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  return b !== null && idAfter(b, a) ? b : a;
}

/** The millisecond part of a canonical id string (when the tick was committed). */
export function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** Orders anything that carries a tick by its id (a tick itself, or `{ tick }`), oldest first. */
export function byTickId(a: { id: string } | { tick: { id: string } }, b: { id: string } | { tick: { id: string } }): number {
  const x = 'id' in a ? a.id : a.tick.id;
  const y = 'id' in b ? b.id : b.tick.id;
  return x === y ? 0 : idAfter(x, y) ? 1 : -1;
}
