import { Socket } from 'node:net';
import { writeRawError } from '../http/raw-response';
import { ownSocket } from '../http/socket-guard';
import type { ErrorBody } from '../shared/wire';
import type { ToWorker } from './ipc';
import type { Member, Members, MessageOf, Seam } from './members';
import { holdForHandover, stopReading, workerCapacity } from './routing';

/**
 * The connections passed between workers. The workers accept from one listening socket, which
 * the cluster module shares among them (SCHED_NONE: each worker accepts for itself; the kernel
 * gives a connection to a worker that is waiting for one). A worker that gets a request of
 * another worker's engine.io session, or that holds as many connections as it may open files,
 * passes the connection here with the bytes it read (`forward`), and it is passed on. Passing a
 * connection costs a round trip per connection between two event loops, one at a time per worker
 * (Node waits for each handle's acknowledgement): fine for the few that need it, not for every
 * connection (see docs/scaling.md).
 */
export class PrimaryForwarding implements Seam<'load' | 'forward'> {
  private readonly capacity = workerCapacity();
  /** Connections each worker last said it holds (`load`), and how many were forwarded to it since. */
  private readonly load = new Map<Member, { open: number; handed: number }>();

  constructor(private readonly members: Members) {}

  receive(member: Member, msg: MessageOf<'load' | 'forward'>, handle: unknown): void {
    switch (msg.ps) {
      case 'load':
        this.load.set(member, { open: msg.open, handed: 0 });
        return;
      case 'forward':
        if (!(handle instanceof Socket)) return;
        // Held here until it is passed on: not read (what it sends waits for the worker), and a
        // client that resets it must not take the primary down.
        ownSocket(handle);
        stopReading(handle);
        this.forward(member, handle, msg.head, msg.to);
        return;
    }
  }

  /** Connections a worker holds or is being handed (for the log of its exit). */
  held(member: Member): number {
    const l = this.load.get(member);
    return l ? l.open + l.handed : 0;
  }

  gone(member: Member): void {
    this.load.delete(member);
  }

  /**
   * A connection a worker passed on: to the worker of its engine.io session (`to`), or, when the
   * sender is full or that worker is gone, to the one with the fewest connections that has room.
   */
  private forward(from: Member, socket: Socket, head: string, to: number | null): void {
    const owner = to === null ? undefined : this.members.get(to);
    let target = owner?.ready ? owner : undefined;
    if (!target) {
      for (const m of this.members.ready()) {
        if ((to === null && m === from) || this.held(m) >= this.capacity) continue;
        if (!target || this.held(m) < this.held(target)) target = m;
      }
    }
    if (!target) return this.unavailable(socket);
    const load = this.load.get(target) ?? { open: 0, handed: 0 };
    load.handed++;
    this.load.set(target, load);
    holdForHandover(socket);
    target.worker.send({ ps: 'conn', head } satisfies ToWorker, socket, { keepOpen: false }, (err) => {
      if (err) socket.destroy();
    });
  }

  private unavailable(socket: Socket): void {
    const body: ErrorBody =
      this.members.ready().length > 0
        ? { statusCode: 503, code: 'TOO_MANY_CONNECTIONS', message: 'every worker holds as many connections as it may open files; try again later or elsewhere' }
        : { statusCode: 503, code: 'SHUTTING_DOWN', message: 'no worker is running; retry shortly' };
    writeRawError(socket, body, { 'Retry-After': '1' });
  }
}
