import { Logger } from '@nestjs/common';
import { byTickId, compareTickIds, formatTickId, idAfter, parseTickId } from '../domain/tick-id';
import type { ResetEvent, Tick } from '../shared/wire';
import { reconnectDelay, type RedisClients } from './redis.clients';
import { decode, message, PAGE, resetEvent, xreadEntries, type RedisStreamReads } from './redis-stream-reads';

/** How long a new leader waits for its tail to reach the newest entry before polling. */
const CATCH_UP_TIMEOUT_MS = 2_000;

/** Where the tail delivers: every committed tick in id order, and the gaps it finds after an outage. */
export type TailOutput = {
  emit(tick: Tick): void;
  gap(reset: ResetEvent): void;
  /** Told, for every page the tail reads, how long ago its last entry was committed (seconds). */
  lag?: (seconds: number) => void;
};

/**
 * The live tail of the stream: XREAD BLOCK on the dedicated `tail` connection, from the newest
 * entry delivered, through any number of outages. Every tick it reads leaves through `emit`, the
 * ticks this instance appends included, so every subscriber on every instance sees the same ids
 * in the same order.
 */
export class RedisTickTail {
  private readonly logger = new Logger('RedisTickLog');
  /** The tail's position: the newest entry delivered. */
  private last: string | null = null;
  private restored = false;
  private tailing: Promise<void> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly clients: RedisClients,
    private readonly reads: RedisStreamReads,
    private readonly blockMs: number,
    private readonly out: TailOutput,
  ) {}

  /** The newest entry delivered (null before the first read of the stream). */
  get lastId(): string | null {
    return this.last;
  }

  get started(): boolean {
    return this.tailing !== null;
  }

  /**
   * Reads the newest tick of each configured pair, and sets the tail's start if it has none:
   * nothing committed after this read is missed.
   */
  async snapshot(): Promise<Tick[]> {
    const w = await this.reads.window();
    // Everything after this id is delivered by the tail; anything read below is deduplicated by id.
    this.last ??= w ? formatTickId(w.lastGeneratedId) : '0-0';
    return w ? this.reads.latestPerPair() : [];
  }

  /** The latest ticks are in (latestPerPair read them at start-up): the tail need not restore them. */
  markRestored(): void {
    this.restored = true;
  }

  start(): void {
    if (this.tailing || this.stopped) return;
    this.tailing = this.tail();
    // Back from an outage (or on the primary Sentinel promoted): read at once, not after the backoff.
    this.clients.tail.on('ready', () => this.wake?.());
  }

  /** Stops the tail; its pending XREAD ends when RedisClients closes the connection. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /**
   * Resolves true once the tail has delivered the newest entry there was when called (a new
   * leader calls it so that its price dedup starts from the stream's latest ticks).
   */
  async catchUp(timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    try {
      const w = await this.reads.window();
      if (!w || !w.last) return this.last !== null;
      const target = w.last[0];
      while (Date.now() < deadline && !this.stopped) {
        if (this.last !== null && !idAfter(target, this.last)) return true;
        await sleep(10);
      }
    } catch (err) {
      this.logger.debug({ msg: 'catch-up check failed', error: message(err) });
    }
    return false;
  }

  /** Follows the stream with XREAD BLOCK on the tail connection, through any number of outages. */
  private async tail(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (this.last === null || !this.restored) {
          // Start-up could not read the stream: restore the latest ticks now, through the tail.
          const latest = await this.snapshot();
          this.restored = true;
          for (const tick of latest.sort(byTickId)) this.out.emit(tick);
        }
        const reply = await this.clients.tail.call('XREAD', 'COUNT', String(PAGE), 'BLOCK', String(this.blockMs), 'STREAMS', this.reads.streamKey, this.last!);
        if (failures > 0) await this.resumed(failures);
        failures = 0;
        const entries = xreadEntries(reply);
        for (const entry of entries) {
          this.last = entry[0];
          const tick = decode(entry);
          if (tick) this.out.emit(tick);
        }
        const committed = this.out.lag && entries.length > 0 ? parseTickId(entries[entries.length - 1][0]) : null;
        if (committed) this.out.lag!(Math.max(0, Date.now() - committed.ms) / 1000);
      } catch (err) {
        if (this.stopped) break;
        failures++;
        if (failures === 1) this.logger.warn({ msg: 'tail interrupted; retrying from the last id seen', lastId: this.last, error: message(err) });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, reconnectDelay(failures));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }

  /**
   * After an outage: live subscribers here cannot have missed ticks unless the tail fell below the
   * floor (the stream was trimmed past it, or Redis came back without its data). Then they are
   * told of the gap, and the tail goes on from where it is: the XREAD that just answered read
   * from its last id, i.e. from the start of what the window holds, so they get every tick the
   * window still has, in order, then live ticks; every instance gives its subscribers the same ids.
   */
  private async resumed(failures: number): Promise<void> {
    const w = await this.reads.window().catch(() => null);
    const last = this.last === null ? null : parseTickId(this.last);
    const fellBehind = w !== null && last !== null && compareTickIds(last, w.floor) < 0;
    // A replica promoted after a failover may lack the newest entries (replication is
    // asynchronous): ticks delivered here are then in no history. The last one delivered is above
    // the floor, so the stream must hold it (trims only cut below the floor) unless it was lost.
    // Said once, with a reset; the tail goes on after it (the new primary's clock has moved on).
    const rolledBack = w !== null && last !== null && compareTickIds(last, w.floor) > 0 && !(await this.reads.holds(this.last!).catch(() => true));
    const fields = { msg: 'tail resumed', lastId: this.last, attempts: failures };
    if (rolledBack) {
      this.logger.warn({ ...fields, msg: 'tail resumed on a Redis that lacks ticks delivered here (failover to a replica behind its primary): live subscribers here get a reset', lastGeneratedId: formatTickId(w.lastGeneratedId) });
      this.out.gap(resetEvent(w));
    } else if (fellBehind) {
      this.logger.warn({ ...fields, msg: 'tail resumed below the window floor: live subscribers here get a reset, then the window', floor: formatTickId(w.floor) });
      this.out.gap(resetEvent(w));
    } else this.logger.log(fields);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
