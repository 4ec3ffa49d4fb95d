/** Exact, mergeable latency statistics and tick-id ordering for the load and resume benchmark. */

/** `[value in ms, count]` pairs: what workers send to the parent. */
export type HistogramData = [number, number][];

export type LatencySummary = { count: number; p50: number | null; p90: number | null; p99: number | null; max: number | null; min: number | null };

/**
 * A histogram with one bucket per whole millisecond. Tick timestamps and arrival times are
 * whole milliseconds, so the buckets lose nothing: merging the workers' histograms gives the
 * same percentiles as merging their raw samples would.
 */
export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;

  add(ms: number): void {
    const v = Math.round(ms);
    this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    this.count++;
  }

  merge(data: HistogramData): this {
    for (const [v, n] of data) {
      this.counts.set(v, (this.counts.get(v) ?? 0) + n);
      this.count += n;
    }
    return this;
  }

  toJSON(): HistogramData {
    return [...this.counts.entries()];
  }

  /** Nearest-rank percentiles: the smallest value at or below which p% of the samples lie. */
  summary(): LatencySummary {
    if (this.count === 0) return { count: 0, p50: null, p90: null, p99: null, max: null, min: null };
    const values = [...this.counts.keys()].sort((a, b) => a - b);
    const ranks = [50, 90, 99].map((p) => Math.max(1, Math.ceil((p / 100) * this.count)));
    const found: number[] = [];
    let cum = 0;
    for (const v of values) {
      cum += this.counts.get(v)!;
      while (found.length < ranks.length && cum >= ranks[found.length]) found.push(v);
    }
    return { count: this.count, p50: found[0], p90: found[1], p99: found[2], max: values[values.length - 1], min: values[0] };
  }
}

/** A contract id `<ms>-<seq>`, or a plain integer id of another server, as a comparable pair; null when neither. */
export function idKey(id: string): [number, number] | null {
  const dash = id.indexOf('-');
  if (dash < 0) {
    const n = Number(id);
    return id !== '' && Number.isSafeInteger(n) ? [n, 0] : null;
  }
  const ms = Number(id.slice(0, dash));
  const seq = Number(id.slice(dash + 1));
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? [ms, seq] : null;
}

export function compareKeys(a: [number, number], b: [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/** A payload time field as epoch milliseconds: ISO-8601, Unix ms or Unix s; NaN when absent or malformed. */
export function timeOf(value: unknown): number {
  if (typeof value === 'number') return value < 1e12 ? value * 1000 : value;
  if (typeof value === 'string') {
    if (/^\d+(\.\d+)?$/.test(value)) return timeOf(Number(value));
    return Date.parse(value);
  }
  return NaN;
}

/** Counts by reason (error codes, HTTP statuses), merged across workers. */
export type Counts = Record<string, number>;

export function addCount(c: Counts, key: string, n = 1): void {
  c[key] = (c[key] ?? 0) + n;
}

export function mergeCounts(into: Counts, from: Counts): Counts {
  for (const [k, v] of Object.entries(from)) addCount(into, k, v);
  return into;
}
