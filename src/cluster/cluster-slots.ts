import { SlotBroker, type SlotRefusal } from '../stream/slots';
import type { RequestOf, TakeAnswer, ToPrimary } from './ipc';

type Ask = { ip: string; max?: number };
type Waiting = { resolve(refusal: SlotRefusal | null): void; reject(err: unknown): void };

/** What ClusterSlots needs of the worker's link to its primary. */
export type SlotChannel = {
  request(msg: RequestOf<Extract<ToPrimary, { ps: 'take' }>>, late: (answer: TakeAnswer) => void): Promise<TakeAnswer>;
  send(msg: Extract<ToPrimary, { ps: 'give' }>): void;
};

/**
 * MAX_STREAM_CONNECTIONS and MAX_STREAM_CONNECTIONS_PER_IP for the whole service: the primary
 * counts. The slots asked for in one event-loop turn go in one `take` (and come back in one
 * answer, in order): after a worker's death the other takes its thousands of subscribers within
 * a second or two, and one IPC round trip per join was a sixth of its CPU in that storm. A give
 * goes at once, so that a slot given back before a take is free for it, as in one process.
 */
export class ClusterSlots extends SlotBroker {
  private asks: Ask[] | null = null;
  private waiting: Waiting[] = [];

  constructor(private readonly channel: SlotChannel) {
    super();
  }

  take(ip: string, max?: number): Promise<SlotRefusal | null> {
    if (this.asks === null) {
      this.asks = [];
      this.waiting = [];
      setImmediate(() => this.send());
    }
    this.asks.push(max === undefined ? { ip } : { ip, max });
    const waiting = this.waiting;
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  }

  give(ip: string): void {
    this.channel.send({ ps: 'give', ip });
  }

  private send(): void {
    const asks = this.asks ?? [];
    const waiting = this.waiting;
    this.asks = null;
    this.waiting = [];
    // Granted after the request gave up (a 500 to its clients): those slots are not used, so they go back.
    const late = (answer: TakeAnswer): void => {
      answer.forEach((refusal, i) => refusal === null && asks[i] && this.give(asks[i].ip));
    };
    this.channel.request({ ps: 'take', asks }, late).then(
      (answer) => waiting.forEach((w, i) => w.resolve(i < answer.length ? answer[i] : 'total')),
      (err: unknown) => waiting.forEach((w) => w.reject(err)),
    );
  }
}
