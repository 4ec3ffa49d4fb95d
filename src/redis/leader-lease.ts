import { randomUUID } from 'crypto';
import type Redis from 'ioredis';

/**
 * Takes the lease when nobody holds it, or when it already holds our token: a SET whose answer
 * was lost (it timed out while Redis was frozen, and Redis ran it on waking) left our token
 * there, and we must not wait a whole TTL for a lease that is ours. Else the holder's PTTL.
 * Reply: [1, 0] taken; [0, pttl] held by another.
 */
const ACQUIRE = `local v = redis.call('get', KEYS[1])
if v == false then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {1, 0} end
if v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return {1, 0} end
return {0, redis.call('pttl', KEYS[1])}`;
/** Extends the lease only while it still holds our token. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lease only while it still holds our token: a late ex-leader cannot delete its successor's. */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export type AcquireResult = { acquired: true; validUntil: number } | { acquired: false; retryInMs: number };

/**
 * A lease in one Redis key: `SET key token NX PX ttl` to take it, a token-checked PEXPIRE to
 * renew it and a token-checked DEL to give it up. `validUntil` is measured from before the
 * command was sent, so the holder's idea of its lease never outlasts Redis' own.
 */
export class LeaderLease {
  readonly token: string;

  constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly ttlMs: number,
    token: string = randomUUID(),
    private readonly now: () => number = Date.now,
  ) {
    this.token = token;
  }

  /** Takes the lease if nobody (or we) hold it; otherwise says how long the holder's lease still runs. */
  async tryAcquire(): Promise<AcquireResult> {
    const sentAt = this.now();
    const reply = (await this.redis.eval(ACQUIRE, 1, this.key, this.token, String(this.ttlMs))) as [number, number];
    if (reply[0] === 1) return { acquired: true, validUntil: sentAt + this.ttlMs };
    const pttl = reply[1];
    // -1: no expiry (someone else's key without a TTL).
    return { acquired: false, retryInMs: pttl < 0 ? this.ttlMs : pttl };
  }

  /** Extends our lease; null when it is no longer ours (expired or taken over). */
  async renew(): Promise<number | null> {
    const sentAt = this.now();
    const n = await this.redis.eval(RENEW, 1, this.key, this.token, String(this.ttlMs));
    return n === 1 ? sentAt + this.ttlMs : null;
  }

  /** Gives the lease up if it is still ours. */
  async release(): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key, this.token)) === 1;
  }

  /** The token of whoever holds the lease (null when nobody). */
  holder(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
