import type { Worker } from 'node:cluster';
import { Requests, type ToPrimary, type ToWorker } from './ipc';

/** One forked worker, as the primary sees it. */
export type Member = {
  /** Its slot, 1..WORKERS (WORKER_INDEX): a restart keeps the slot. */
  readonly index: number;
  readonly worker: Worker;
  readonly startedAt: number;
  /** The primary's requests to it (metrics) and their answers. */
  readonly requests: Requests;
  /** It serves: it said `ready`, and its channel is open. */
  ready: boolean;
};

/** The messages of one cross-process concern, by their `ps`. */
export type MessageOf<P extends ToPrimary['ps']> = Extract<ToPrimary, { ps: P }>;

/**
 * One cross-process concern of the primary (the ticks, the connection slots, the metrics, the
 * workers accepting on the shared port): it answers its own messages and lets go of what a worker held when its
 * channel closes. The supervisor (primary.ts) owns the workers and hands each message to its seam.
 */
export interface Seam<P extends ToPrimary['ps']> {
  /** A message of its own (`P`). */
  receive(member: Member, msg: MessageOf<P>): void;
  /** A worker's channel closed (it exited or is about to): what it held is let go. */
  gone?(member: Member): void;
}

/** The workers the primary has forked, by cluster worker id. */
export class Members {
  private readonly byId = new Map<number, Member>();

  add(index: number, worker: Worker): Member {
    const member: Member = {
      index,
      worker,
      startedAt: Date.now(),
      requests: new Requests((msg) => this.send(member, msg as ToWorker)),
      ready: false,
    };
    this.byId.set(worker.id, member);
    return member;
  }

  get(id: number): Member | undefined {
    return this.byId.get(id);
  }

  delete(id: number): void {
    this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<Member> {
    return this.byId.values();
  }

  /** The workers that serve. */
  ready(): Member[] {
    return [...this.byId.values()].filter((m) => m.ready);
  }

  /** A send to a worker whose channel is closed is dropped ('exit' follows and restarts it). */
  send(member: Member, msg: ToWorker): void {
    if (member.worker.isConnected()) member.worker.send(msg);
  }

  /** A request's answer, on the worker's channel. */
  answer(member: Member): (msg: { ps: 'answer'; n: number; value: unknown }) => void {
    return (msg) => this.send(member, msg);
  }
}
