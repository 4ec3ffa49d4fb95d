import { Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import type { Subscription } from 'rxjs';
import type { AppConfig } from '../config/app-config';
import type { LifecycleService } from '../lifecycle/lifecycle.service';
import { SlotBroker, type SlotRefusal } from '../stream/slots';
import type { RedisClients } from './redis.clients';

/** How long an instance's liveness key lives without a refresh (refreshed every third of it). */
export const INSTANCE_TTL_MS = 15_000;

/**
 * Takes a slot of a `sub` when the instances whose liveness key still exists hold fewer than the
 * cap; the fields of the others (instances gone without giving their slots back) are deleted.
 * Refreshes our own liveness key, and the hash's expiry (a hash nobody refreshes goes with its holders).
 * KEYS: the sub's hash, our liveness key. ARGV: our id, the cap, the TTL, the liveness keys' prefix.
 */
const TAKE = `redis.call('set', KEYS[2], '1', 'PX', ARGV[3])
local sum = 0
local fields = redis.call('hgetall', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] == ARGV[1] or redis.call('exists', ARGV[4] .. fields[i]) == 1 then sum = sum + tonumber(fields[i + 1])
  else redis.call('hdel', KEYS[1], fields[i]) end
end
if sum >= tonumber(ARGV[2]) then return 0 end
redis.call('hincrby', KEYS[1], ARGV[1], 1)
redis.call('pexpire', KEYS[1], ARGV[3])
return 1`;
/** Gives one slot back (the field goes at 0). KEYS: the sub's hash. ARGV: our id. */
const GIVE = `if redis.call('hincrby', KEYS[1], ARGV[1], -1) <= 0 then redis.call('hdel', KEYS[1], ARGV[1]) end return 1`;

const SUB = 'sub:';

/**
 * The per-`sub` cap across instances (with Redis): wraps the process' own broker (LocalSlots, or
 * with workers the primary's ClusterSlots). A `sub:` key first takes the inner slot (the caps of
 * this process or box, as without Redis), then one in `<prefix>:subs:<sub>`, a hash of instance id
 * to count; refused there, the inner slot goes back and the refusal is the per-key one ('ip').
 * Addresses stay per instance. Each process is an instance (a worker too): its counts live as long
 * as its `<prefix>:instance:<id>` key, refreshed every INSTANCE_TTL_MS/3, so a crashed process'
 * slots stop counting within INSTANCE_TTL_MS. Every refresh also writes our count of each `sub`
 * we hold (repairing a give that Redis did not answer). Redis not answering: the inner broker
 * decides alone (fail open), logged once per outage.
 */
export class SharedSubSlots extends SlotBroker implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(SharedSubSlots.name);
  readonly id = randomUUID();
  /** Our slots of each sub counted in Redis (an entry at 0: its field is still to be deleted). */
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failing = false;

  constructor(
    private readonly inner: SlotBroker,
    private readonly redis: Redis,
    private readonly key: (name: string) => string,
    private readonly maxPerKey: number,
    private readonly ttlMs = INSTANCE_TTL_MS,
  ) {
    super();
  }

  /**
   * The broker of a process: the shared one when Redis is configured, else `inner` itself. The
   * slots go back when the shutdown begins, before the streams end: a process exits as soon as
   * its streams have ended (service.ts), and the others must not count its slots for
   * INSTANCE_TTL_MS while its subscribers come back to them.
   */
  static around(inner: SlotBroker, redis: RedisClients | undefined, config: AppConfig, lifecycle: LifecycleService): SlotBroker {
    if (!redis) return inner;
    const shared = new SharedSubSlots(inner, redis.command, (name) => redis.key(name), config.maxStreamConnectionsPerIp);
    shared.draining = lifecycle.whenShutdownBegins(() => shared.beforeApplicationShutdown());
    return shared;
  }

  private draining: Subscription | undefined;

  onModuleInit(): void {
    void this.refresh();
  }

  async take(ip: string, max?: number): Promise<SlotRefusal | null> {
    const refusal = await this.inner.take(ip, max);
    if (refusal !== null || !ip.startsWith(SUB) || this.closed) return refusal;
    const sub = ip.slice(SUB.length);
    // Counted before the answer: a refresh meanwhile writes the slot as held (never fewer than Redis has).
    this.held.set(sub, (this.held.get(sub) ?? 0) + 1);
    let taken: unknown;
    try {
      taken = await this.redis.eval(TAKE, 2, this.hashKey(sub), this.instanceKey(), this.id, String(max ?? this.maxPerKey), String(this.ttlMs), this.key('instance:'));
      this.answered();
    } catch (err) {
      this.unanswered(err);
      this.drop(sub);
      return null;
    }
    if (taken === 1) return null;
    this.drop(sub);
    this.inner.give(ip);
    return 'ip';
  }

  give(ip: string): void {
    this.inner.give(ip);
    if (!ip.startsWith(SUB)) return;
    const sub = ip.slice(SUB.length);
    const mine = this.held.get(sub);
    // Not counted in Redis (taken while it did not answer), or counted by the shutdown already.
    if (mine === undefined || mine === 0 || this.closed) return;
    this.held.set(sub, mine - 1);
    this.redis.eval(GIVE, 1, this.hashKey(sub), this.id).then(
      () => {
        if (this.held.get(sub) === 0) this.held.delete(sub);
      },
      (err: unknown) => this.unanswered(err),
    );
  }

  /** Gives up our liveness key and every count of ours. */
  async beforeApplicationShutdown(): Promise<void> {
    this.draining?.unsubscribe();
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const batch = this.redis.multi().del(this.instanceKey());
    for (const sub of this.held.keys()) batch.hdel(this.hashKey(sub), this.id);
    this.held.clear();
    await batch.exec().catch(() => undefined);
  }

  /** The liveness key, and our count of every sub we hold (or its field deleted), with the hashes' expiry. */
  private async refresh(): Promise<void> {
    if (this.closed) return;
    const batch = this.redis.multi().set(this.instanceKey(), '1', 'PX', this.ttlMs);
    const written = [...this.held];
    for (const [sub, n] of written) {
      if (n > 0) batch.hset(this.hashKey(sub), this.id, n).pexpire(this.hashKey(sub), this.ttlMs);
      else batch.hdel(this.hashKey(sub), this.id);
    }
    try {
      await batch.exec();
      this.answered();
      for (const [sub, n] of written) if (n === 0 && this.held.get(sub) === 0) this.held.delete(sub);
    } catch (err) {
      this.unanswered(err);
    }
    if (!this.closed) this.timer = setTimeout(() => void this.refresh(), Math.floor(this.ttlMs / 3)).unref();
  }

  private drop(sub: string): void {
    const n = (this.held.get(sub) ?? 1) - 1;
    if (n > 0) this.held.set(sub, n);
    else this.held.delete(sub);
  }

  private unanswered(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.logger.warn({ msg: 'Redis did not answer for the per-sub caps; each instance counts its own until it does', error: err instanceof Error ? err.message : String(err) });
  }

  private answered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.logger.log({ msg: 'Redis answers again; per-sub caps hold across instances' });
  }

  private hashKey(sub: string): string {
    return this.key(`subs:${sub}`);
  }

  private instanceKey(): string {
    return this.key(`instance:${this.id}`);
  }
}
