import type { Confirmation } from '../stream/tick-log';
import type { WindowSnapshot } from '../stream/memory-tick-log';
import type { SlotRefusal } from '../stream/slots';
import type { MetricsJson } from '../metrics/metrics.service';
import type { Tick } from '../shared/wire';

/**
 * The messages between the primary and its workers, over the cluster module's IPC channel
 * (JSON). Every one has a `ps` field, which no message of Node's own or prom-client's has.
 * A request carries `n` and its answer the same `n`.
 */
export type ToPrimary =
  | { ps: 'ready' }
  | { ps: 'hello'; n: number }
  /** The slots one turn asks for, answered in order (TakeAnswer). `ip`: the key a cap counts (an address, or `sub:<sub>`); `max`: its own cap (a token's maxConnections). */
  | { ps: 'take'; n: number; asks: { ip: string; max?: number }[] }
  | { ps: 'give'; ip: string }
  /** The worker is at its open-files capacity: may it stop accepting on the shared port? Answered true when another worker accepts. */
  | { ps: 'full'; n: number }
  /** The worker accepts on the shared port again. */
  | { ps: 'open' }
  | { ps: 'metrics'; n: number }
  | { ps: 'refresh'; n: number; pairs: string[] }
  | { ps: 'sources'; n: number }
  /** The primary's one-minute candles (its backfill and every tick's), answered as CandleSnapshot; `fills`: the primary's backfill count the worker last pulled (-1: none). */
  | { ps: 'candles'; n: number; fills: number }
  | { ps: 'answer'; n: number; value: unknown };

export type ToWorker =
  /** No other worker accepts on the shared port any more: one that stopped because it was full listens again. */
  | { ps: 'reopen' }
  /** The ticks (in id order) and confirmations of one event-loop turn of the primary: a poll's ticks reach a worker's subscribers in one write each. */
  | { ps: 'feed'; ticks: Tick[]; confirmations: Confirmation[] }
  | { ps: 'json'; n: number }
  /** The primary got its `level`-th stop signal: the first starts the shutdown, a later one cuts SHUTDOWN_DELAY_MS short. */
  | { ps: 'stop'; signal: 'SIGTERM' | 'SIGINT'; level: number }
  | { ps: 'answer'; n: number; value: unknown };

/** Answers request `n` once `work` settles: its value, or `fallback` when it fails. Either side's. */
export function answerWhenDone(send: (msg: { ps: 'answer'; n: number; value: unknown }) => void, n: number, work: Promise<unknown>, fallback: unknown = null): void {
  void work.then(
    (value) => send({ ps: 'answer', n, value }),
    () => send({ ps: 'answer', n, value: fallback }),
  );
}

/** A request as its sender writes it: `n` is added when it is sent. */
export type RequestOf<M> = M extends { n: number } ? Omit<M, 'n'> : never;

export type HelloAnswer = WindowSnapshot;
export type TakeAnswer = (SlotRefusal | null)[];
export type JsonAnswer = MetricsJson;
export type MetricsAnswer = string;
export type FullAnswer = boolean;

export function isOurs(msg: unknown): msg is { ps: string } {
  return typeof msg === 'object' && msg !== null && typeof (msg as { ps?: unknown }).ps === 'string';
}

/**
 * Requests and their answers over one channel: `request` resolves with the answer of the same
 * `n`, or rejects after `timeoutMs`. An answer that comes after that goes to `late` (a slot the
 * primary granted to a request that gave up must be given back).
 */
export class Requests {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private readonly overdue = new Map<number, (value: unknown) => void>();

  constructor(private readonly send: (msg: { ps: string; n: number }) => void) {}

  request<T>(msg: { ps: string }, timeoutMs: number, late?: (value: T) => void): Promise<T> {
    const n = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(n);
        if (late) this.overdue.set(n, late as (value: unknown) => void);
        reject(new Error(`no answer to ${msg.ps} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(n, { resolve: resolve as (value: unknown) => void, reject, timer });
      try {
        this.send({ ...msg, n });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(n);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** An `answer` message: settles its request, or goes to its `late` handler (an unknown `n` is ignored). */
  settle(n: number, value: unknown): void {
    const late = this.overdue.get(n);
    if (late) {
      this.overdue.delete(n);
      return late(value);
    }
    const p = this.pending.get(n);
    if (!p) return;
    this.pending.delete(n);
    clearTimeout(p.timer);
    p.resolve(value);
  }

  /** The channel is gone: every open request fails. */
  failAll(reason: string): void {
    this.overdue.clear();
    for (const [n, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(reason));
      this.pending.delete(n);
    }
  }
}
