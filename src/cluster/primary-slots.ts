import type { AppConfig } from '../config/app-config';
import { SlotCounter } from '../stream/slots';
import type { TakeAnswer } from './ipc';
import type { Member, Members, MessageOf, Seam } from './members';

/**
 * The connection-slot broker of the whole service: MAX_STREAM_CONNECTIONS and
 * MAX_STREAM_CONNECTIONS_PER_IP are counted here for every worker (each asks with `take`, the
 * slots of one turn in one message, and gives back with `give`, see cluster-slots.ts). The slots a worker holds are given
 * back at once when its channel closes.
 */
export class PrimarySlots implements Seam<'take' | 'give'> {
  private readonly slots: SlotCounter;
  /** Stream slots each worker holds, by client address. */
  private readonly held = new Map<Member, Map<string, number>>();

  constructor(
    private readonly members: Members,
    config: AppConfig,
  ) {
    this.slots = new SlotCounter(config.maxStreamConnections, config.maxStreamConnectionsPerIp);
  }

  receive(member: Member, msg: MessageOf<'take' | 'give'>): void {
    const held = this.held.get(member) ?? new Map<string, number>();
    switch (msg.ps) {
      case 'take': {
        const answer: TakeAnswer = (Array.isArray(msg.asks) ? msg.asks : []).map(({ ip, max }) => {
          const refusal = this.slots.take(ip, typeof max === 'number' ? max : undefined);
          if (refusal === null) held.set(ip, (held.get(ip) ?? 0) + 1);
          return refusal;
        });
        this.held.set(member, held);
        return this.members.send(member, { ps: 'answer', n: msg.n, value: answer });
      }
      case 'give': {
        const n = held.get(msg.ip) ?? 0;
        if (n === 0) return;
        if (n > 1) held.set(msg.ip, n - 1);
        else held.delete(msg.ip);
        this.slots.give(msg.ip);
        return;
      }
    }
  }

  gone(member: Member): void {
    for (const [ip, n] of this.held.get(member) ?? []) this.slots.give(ip, n);
    this.held.delete(member);
  }
}
