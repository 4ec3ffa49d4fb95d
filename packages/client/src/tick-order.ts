/**
 * Tick ids are `<milliseconds>-<sequence>` (the Redis Streams form). The contract calls them
 * opaque, but de-duplicating a resume needs their order; unparseable ids compare as equal to
 * nothing and sort first, so they can never shadow a real one.
 */
type Parsed = { ms: number; seq: number };

const ID = /^(\d{1,16})-(\d{1,16})$/;

function parse(id: string): Parsed | null {
  const m = ID.exec(id);
  return m?.[1] !== undefined && m[2] !== undefined ? { ms: Number(m[1]), seq: Number(m[2]) } : null;
}

/** Negative when a is older than b, 0 when equal, positive when newer. */
export function compareTickIds(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (!pa || !pb) return pa ? 1 : pb ? -1 : 0;
  return pa.ms - pb.ms || pa.seq - pb.seq;
}

export function isAfter(id: string, last: string | null): boolean {
  return last === null || compareTickIds(id, last) > 0;
}
