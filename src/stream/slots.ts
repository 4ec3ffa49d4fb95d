/** Why a stream slot was refused: the service holds MAX_STREAM_CONNECTIONS, or the address its MAX_STREAM_CONNECTIONS_PER_IP. */
export type SlotRefusal = 'total' | 'ip';

/**
 * The count behind MAX_STREAM_CONNECTIONS and MAX_STREAM_CONNECTIONS_PER_IP. One process keeps
 * it itself; with workers, the primary keeps the one for the whole service (ClusterSlots asks it).
 */
export class SlotCounter {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  /** `ip` is the key the cap counts: a client address, or `sub:<sub>` for a stream with a token (`max`: its own cap, its maxConnections). */
  take(ip: string, max = this.maxPerIp): SlotRefusal | null {
    if (this.total >= this.maxTotal) return 'total';
    const mine = this.perIp.get(ip) ?? 0;
    if (mine >= max) return 'ip';
    this.total++;
    this.perIp.set(ip, mine + 1);
    return null;
  }

  give(ip: string, count = 1): void {
    const mine = this.perIp.get(ip) ?? 0;
    const n = Math.min(count, mine);
    this.total -= n;
    if (mine - n > 0) this.perIp.set(ip, mine - n);
    else this.perIp.delete(ip);
  }

  counts(): { total: number; ips: number } {
    return { total: this.total, ips: this.perIp.size };
  }
}

/** Where the connection slots are counted: here (LocalSlots) or, with workers, in the primary. */
export abstract class SlotBroker {
  /** `max`: this key's own cap instead of MAX_STREAM_CONNECTIONS_PER_IP (a token's maxConnections). */
  abstract take(ip: string, max?: number): Promise<SlotRefusal | null>;
  abstract give(ip: string): void;
}

export class LocalSlots extends SlotBroker {
  private readonly counter: SlotCounter;

  constructor(maxTotal: number, maxPerIp: number) {
    super();
    this.counter = new SlotCounter(maxTotal, maxPerIp);
  }

  take(ip: string, max?: number): Promise<SlotRefusal | null> {
    return Promise.resolve(this.counter.take(ip, max));
  }

  give(ip: string): void {
    this.counter.give(ip);
  }
}
