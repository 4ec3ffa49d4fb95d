import type { Tick } from './types';
import { isAfter } from './tick-order';

export type Accepted =
  /** Already seen (a replay overlapping what arrived before): drop it. */
  | { kind: 'duplicate' }
  /** New. `resumed` is set on the tick that ends a resume: how many missed ticks came back before it. */
  | { kind: 'new'; resumed: number | null };

/** How many recent (arrival − timestamp) samples estimate the server's clock offset. */
const OFFSET_SAMPLES = 50;

/**
 * The client's side of gapless resume, shared by every transport: remembers the last id (sent as
 * `lastEventId` on the next connection), drops ticks already seen, and counts the missed ticks a
 * resume brings back.
 *
 * SSE and WebSocket say nothing about where the replay ends, so the count works from time: after
 * a reconnect opens at `openedAt`, every new tick published before that moment was missed while
 * away; the first tick published after it is live and ends the count. Timestamps are the
 * server's clock, so `openedAt` is moved by the smallest (arrival − timestamp) seen recently: that
 * is the clock offset plus the fastest delivery, an estimate that can only be too large, so the
 * count can only err low, never claim ticks that were not missed. A quiet market that sends no
 * live tick ends the count through `settle()`.
 */
export class ResumeTracker {
  private last: string | null = null;
  private resumeFrom: number | null = null;
  private missed = 0;
  private readonly offsets: number[] = [];

  /** `lastId`: resume from here on the first connection (null: start from the latest prices). */
  constructor(lastId: string | null = null) {
    this.last = lastId;
  }

  /** The id to resume from, null before the first tick and after a reset. */
  get lastId(): string | null {
    return this.last;
  }

  /**
   * Client clock minus server clock, as learned from the stream: the smallest recent (arrival −
   * timestamp), so the offset plus the fastest delivery. Null before the first tick.
   */
  get clockOffsetMs(): number | null {
    return this.offsets.length > 0 ? this.clockOffset() : null;
  }

  get resuming(): boolean {
    return this.resumeFrom !== null;
  }

  /**
   * A reconnection opened at `openedAt` (client ms). Nothing to count when nothing was seen; a
   * resume cut short by another disconnect keeps its count and goes on.
   */
  beginResume(openedAt: number): void {
    if (this.last === null) return;
    if (this.resumeFrom === null) this.missed = 0;
    this.resumeFrom = openedAt - this.clockOffset();
  }

  accept(tick: Tick, receivedAt: number): Accepted {
    if (!isAfter(tick.id, this.last)) return { kind: 'duplicate' };
    this.last = tick.id;
    const published = Date.parse(tick.timestamp);
    if (this.resumeFrom !== null) {
      if (Number.isFinite(published) && published < this.resumeFrom) {
        this.missed += 1;
        return { kind: 'new', resumed: null };
      }
      this.sample(receivedAt, published);
      return { kind: 'new', resumed: this.settle() };
    }
    this.sample(receivedAt, published);
    return { kind: 'new', resumed: null };
  }

  /** Ends a resume that no live tick has ended (yet); the missed count, or null if none was running. */
  settle(): number | null {
    if (this.resumeFrom === null) return null;
    const n = this.missed;
    this.resumeFrom = null;
    this.missed = 0;
    return n;
  }

  /** The server could not resume (history gap): start afresh from whatever it sends next. */
  reset(): void {
    this.last = null;
    this.resumeFrom = null;
    this.missed = 0;
  }

  private sample(receivedAt: number, published: number): void {
    if (!Number.isFinite(published)) return;
    this.offsets.push(receivedAt - published);
    if (this.offsets.length > OFFSET_SAMPLES) this.offsets.shift();
  }

  private clockOffset(): number {
    return this.offsets.length > 0 ? Math.min(...this.offsets) : 0;
  }
}
