import type { INestApplicationContext } from '@nestjs/common';
import { CandleStore } from '../candles/candle-store';
import { PricePollerService } from '../ingest/price-poller.service';
import { TickLog, type Confirmation } from '../stream/tick-log';
import type { Tick } from '../shared/wire';
import { TurnBatcher } from '../util/turn-batcher';
import { answerWhenDone, type ToWorker } from './ipc';
import type { Member, Members, MessageOf, Seam } from './members';
import type { PrimaryTickLog, TickBus } from './primary.module';

type FeedItem = { tick: Tick } | { confirmation: Confirmation };

/**
 * The ticks across processes without REDIS_URL, where the primary is the one process that
 * polls (its PrimaryTickLog writes to `bus`): a worker asks for the window (`hello`) and from
 * then on gets every tick and confirmation, with the primary's ids, in one `feed` message per
 * event-loop turn; its refreshes, source reports and candles are the primary poller's. With
 * Redis the workers are instances of their own: the window is null and nothing is fed.
 */
export class PrimaryTicks implements Seam<'hello' | 'refresh' | 'sources' | 'candles'> {
  /** Workers that have the window (hello answered): every tick from then on goes to them. */
  private readonly joined = new Set<Member>();
  private log: PrimaryTickLog | undefined;
  private poller: PricePollerService | undefined;
  private candles: CandleStore | undefined;
  /**
   * What the primary committed in this event-loop turn, sent to every worker that has the
   * window as one message when the turn ends: the worker then hands a poll's ticks to its
   * subscribers in one turn too (one write per subscriber, as in a process alone).
   */
  private readonly turn = new TurnBatcher<FeedItem>((items) => this.feed(items));
  /** Where the primary's PrimaryTickLog writes (see PrimaryModule.register). */
  readonly bus: TickBus = {
    tick: (tick) => this.turn.add({ tick }),
    confirmation: (confirmation) => this.turn.add({ confirmation }),
  };

  constructor(private readonly members: Members) {}

  /** The primary's context is up: without Redis its window, poller and candles serve the workers. */
  serveFrom(ctx: INestApplicationContext, polls: boolean): void {
    if (!polls) return;
    this.log = ctx.get(TickLog) as PrimaryTickLog;
    this.poller = ctx.get(PricePollerService);
    this.candles = ctx.get(CandleStore);
  }

  receive(member: Member, msg: MessageOf<'hello' | 'refresh' | 'sources' | 'candles'>): void {
    const answer = this.members.answer(member);
    switch (msg.ps) {
      case 'hello':
        // The window, then (in order, on the same channel) every tick after it; a tick of this
        // turn is in both, and the replica ignores it the second time (an id not past its newest).
        this.joined.add(member);
        return answer({ ps: 'answer', n: msg.n, value: this.log?.snapshot() ?? null });
      case 'refresh':
      case 'sources': {
        const poller = this.poller;
        const work = !poller ? Promise.resolve(null) : msg.ps === 'refresh' ? poller.refresh(msg.pairs) : poller.sourcesReport();
        return answerWhenDone(answer, msg.n, work);
      }
      case 'candles':
        return answerWhenDone(answer, msg.n, Promise.resolve(this.candles?.snapshot(msg.fills) ?? { fills: 0, pairs: null }), { fills: 0, pairs: null });
    }
  }

  gone(member: Member): void {
    this.joined.delete(member);
  }

  private feed(items: FeedItem[]): void {
    const msg: Extract<ToWorker, { ps: 'feed' }> = { ps: 'feed', ticks: [], confirmations: [] };
    for (const item of items) {
      if ('tick' in item) msg.ticks.push(item.tick);
      else msg.confirmations.push(item.confirmation);
    }
    for (const m of this.joined) this.members.send(m, msg);
  }
}
