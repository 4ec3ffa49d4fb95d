import { ReplaySubject } from 'rxjs';
import { idAfter } from '../domain/tick-id';
import type { Tick } from '../shared/wire';

/**
 * A pair's channel, the one subject a tick passes through: a ReplaySubject(1) that the log
 * delivers each committed tick of the pair into (TickLog.commit). It replays the latest tick to
 * a new subscriber and carries every live one to the hub, in id order: a tick at or below the
 * latest id is dropped (restored ticks behind the live feed, a Redis tail that reads them again).
 */
export class PairChannel extends ReplaySubject<Tick> {
  /** The tick the replay holds (rxjs keeps its buffer to itself; the id check needs it). */
  private last: Tick | undefined;

  constructor() {
    super(1);
  }

  override next(tick: Tick): void {
    if (this.last !== undefined && !idAfter(tick.id, this.last.id)) return;
    this.last = tick;
    super.next(tick);
  }

  /** The latest tick, for readers that do not subscribe (REST, the poller's dedup, health). */
  get latest(): Tick | undefined {
    return this.last;
  }

  /** What the replay gives a new subscriber (the latest tick, if any): what a join without a resume point starts from. */
  replayed(): Tick | undefined {
    let tick: Tick | undefined;
    this.subscribe((t) => (tick = t)).unsubscribe();
    return tick;
  }
}
