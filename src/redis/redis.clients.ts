import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';
import type { AppConfig } from '../config/app-config';

/** How long start-up waits for the first connection before going on not-ready. */
const CONNECT_WAIT_MS = 5_000;
/** Reconnect backoff: 100 ms doubling up to 2 s, with jitter so replicas do not reconnect in step. */
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/** A command that gets no answer within this long fails (the connection is then presumably dead). */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

export function reconnectDelay(attempt: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 10)) + Math.floor(Math.random() * 100);
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
  };
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
    const url = config.redisUrl;
    if (!url) throw new Error('RedisClients needs REDIS_URL');
    this.command = this.create(url, 'command', { commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
    // The tail's XREAD BLOCK is bounded by its block time plus a grace, not by commandTimeout.
    this.tail = this.create(url, 'tail', { blockingTimeout: 1, blockingTimeoutGrace: REDIS_COMMAND_TIMEOUT_MS, autoResendUnfulfilledCommands: false });
  }

  /** Connects both clients, waiting at most CONNECT_WAIT_MS: a Redis that is down makes the service not-ready, not dead. */
  async connect(): Promise<void> {
    const attempts = [this.command, this.tail].map((client) => client.connect().catch(() => undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, CONNECT_WAIT_MS)));
    await Promise.race([Promise.all(attempts), timeout]);
    clearTimeout(timer);
    if (this.command.status !== 'ready') this.logger.warn({ msg: 'Redis not reachable at start-up; retrying in the background', url: redact(this.config.redisUrl!) });
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

  private create(url: string, role: string, extra: RedisOptions): Redis {
    const client = new Redis(url, { ...redisOptions(`${this.config.redisPrefix}:${role}`), ...extra });
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

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
