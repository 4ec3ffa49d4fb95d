import type { Member, Members, MessageOf, Seam } from './members';

/**
 * Which workers accept on the shared port. A worker at its open-files capacity stops accepting
 * (worker-door.ts) only while another still does: the cluster module closes the port once no
 * worker listens on it, and a closed port refuses connections and resets the ones waiting in
 * its backlog. So the last worker that accepts keeps listening, and answers 503 to what it
 * cannot take. When the last accepting worker is gone (it exited), the ones that stopped listen
 * again.
 */
export class PrimaryDoors implements Seam<'full' | 'open'> {
  /** Workers that stopped accepting because they were full. */
  private readonly closed = new Set<Member>();

  constructor(private readonly members: Members) {}

  receive(member: Member, msg: MessageOf<'full' | 'open'>): void {
    switch (msg.ps) {
      case 'full': {
        const another = this.members.ready().some((m) => m !== member && !this.closed.has(m));
        if (another) this.closed.add(member);
        return this.members.send(member, { ps: 'answer', n: msg.n, value: another });
      }
      case 'open':
        this.closed.delete(member);
        return;
    }
  }

  gone(member: Member): void {
    this.closed.delete(member);
    if (this.members.ready().some((m) => !this.closed.has(m))) return;
    for (const m of this.closed) this.members.send(m, { ps: 'reopen' });
    this.closed.clear();
  }
}
