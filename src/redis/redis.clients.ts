import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';
import type { AppConfig, RedisTarget } from '../config/app-config';
import { backoffDelay, type BackoffPolicy } from '../util/backoff';

/** How long start-up waits for the first connection before going on not-ready. */
const CONNECT_WAIT_MS = 5_000;
/** Reconnect backoff: 100 ms doubling up to 2 s, with jitter (up to a quarter less) so replicas do not reconnect in step. */
const RECONNECT_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 2_000, jitter: 0.25 };
/** A command that gets no answer within this long fails (the connection is then presumably dead). */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

/** The delay before reconnect `attempt` (1 for the first) of every Redis connection and of the tail. */
export function reconnectDelay(attempt: number): number {
  return backoffDelay(attempt, RECONNECT_BACKOFF);
}

/**
 * Options for every connection: RESP2 (plain array replies), fail fast while disconnected
 * (no offline queue, at most one retry per request) and reconnect forever with backoff.
 */
export function redisOptions(name: string): RedisOptions {
  return {
    protocol: 2,
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: reconnectDelay,
    connectTimeout: REDIS_COMMAND_TIMEOUT_MS,
    lazyConnect: true,
    // A primary demoted under us (failover, or a managed endpoint moved) answers writes with
    // READONLY: reconnect, which asks the Sentinels (or the DNS name) for the primary again.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
}

/**
 * How to reach the primary: REDIS_URL as given, or through Sentinel. With Sentinel, ioredis asks
 * the Sentinels for the current primary on every (re)connect, checks that what it reached really
 * is the primary, and (failoverDetector) drops its connection as soon as a Sentinel announces a
 * new one (+switch-master), so every client of this process follows a failover by itself.
 */
export function targetOptions(target: RedisTarget): { url?: string; options: RedisOptions } {
  if (target.kind === 'url') return { url: target.url, options: {} };
  return {
    options: {
      sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
      name: target.name,
      role: 'master',
      password: target.password,
      sentinelPassword: target.sentinelPassword,
      failoverDetector: true,
      sentinelCommandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      // All Sentinels unreachable: ask them again with the same backoff as the connections.
      sentinelRetryStrategy: reconnectDelay,
      ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    },
  };
}

/** Where the service's Redis is, for logs (no password). */
export function describeTarget(target: RedisTarget): string {
  if (target.kind === 'url') return target.url.replace(/\/\/[^@/]*@/, '//***@');
  return `sentinel ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}${target.tls ? ' (TLS)' : ''}`;
}

/**
 * The service's Redis connections: `command` for everything that answers at once, and `tail`,
 * dedicated to the blocking XREAD of the live tail (a blocked connection can serve nothing else).
 * Both reconnect by themselves; errors are logged once per outage, never thrown as events.
 */
export class RedisClients implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisClients.name);
  readonly command: Redis;
  readonly tail: Redis;
  private closed = false;

  constructor(private readonly config: AppConfig) {
    const target = config.redis;
    if (!target) throw new Error('RedisClients needs REDIS_URL or REDIS_SENTINELS');
    this.command = this.create(target, 'command', { commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
    // The tail's XREAD BLOCK is bounded by its block time plus a grace, not by commandTimeout.
    this.tail = this.create(target, 'tail', { blockingTimeout: 1, blockingTimeoutGrace: REDIS_COMMAND_TIMEOUT_MS, autoResendUnfulfilledCommands: false });
  }

  /** Connects both clients, waiting at most CONNECT_WAIT_MS: a Redis that is down makes the service not-ready, not dead. */
  async connect(): Promise<void> {
    const attempts = [this.command, this.tail].map((client) => client.connect().catch(() => undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, CONNECT_WAIT_MS)));
    await Promise.race([Promise.all(attempts), timeout]);
    clearTimeout(timer);
    if (this.command.status !== 'ready') this.logger.warn({ msg: 'Redis not reachable at start-up; retrying in the background', redis: describeTarget(this.config.redis!) });
  }

  get isConnected(): boolean {
    return this.command.status === 'ready';
  }

  /** A key under REDIS_PREFIX. */
  key(name: string): string {
    return `${this.config.redisPrefix}:${name}`;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tail.disconnect();
    try {
      await Promise.race([this.command.quit(), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
    } catch {
      // already disconnected
    }
    this.command.disconnect();
  }

  /** Every Redis connection of the service is made here, so that all of them follow a failover alike. */
  private create(target: RedisTarget, role: string, extra: RedisOptions): Redis {
    const { url, options } = targetOptions(target);
    const all = { ...redisOptions(`${this.config.redisPrefix}:${role}`), ...options, ...extra };
    const client = url === undefined ? new Redis(all) : new Redis(url, all);
    let down = false;
    client.on('error', (err: Error) => {
      if (down || this.closed) return;
      down = true;
      this.logger.warn({ msg: 'Redis connection error; reconnecting with backoff', role, error: err.message });
    });
    client.on('ready', () => {
      if (down) this.logger.log({ msg: 'Redis connection back', role });
      down = false;
    });
    client.on('end', () => {
      if (!this.closed) this.logger.warn({ msg: 'Redis connection ended', role });
    });
    return client;
  }
}
