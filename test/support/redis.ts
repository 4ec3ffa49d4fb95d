import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { freePort as benchFreePort } from '../../bench/service';
import Redis from 'ioredis';
import { sleep } from './sse';

/** The Redis the specs use (each under its own random prefix). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function randomPrefix(): string {
  return `test:${randomBytes(6).toString('hex')}`;
}

/** A plain client for a spec's own checks; quits with `quit()`. */
export function testClient(url = REDIS_URL): Redis {
  return new Redis(url, { protocol: 2, maxRetriesPerRequest: 1, lazyConnect: false });
}

/** Deletes every key under a prefix (SCAN + DEL). */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = testClient(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A free port on 127.0.0.1 outside the range outgoing connections take theirs from (bench/service.ts). */
export function freePort(): Promise<number> {
  return benchFreePort('127.0.0.1');
}

/** A throwaway redis-server child process (no persistence), to be killed and started again. */
export class RedisProcess {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  /** `extraArgs`: more redis-server options, e.g. `--enable-debug-command local` for DEBUG SLEEP. */
  static async start(extraArgs: readonly string[] = []): Promise<RedisProcess> {
    const server = new RedisProcess(await freePort(), extraArgs);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs], { stdio: 'ignore' });
    await redisAnswers(this.port, `redis-server on port ${this.port} did not start`);
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: its connections stay open but nothing answers. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (!this.child || this.child.exitCode !== null) throw new Error('redis-server is not running');
    this.child.kill(signal);
  }

  /** Kills the server at once (SIGKILL): its clients see the connection drop. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

/** Resolves once a Redis (or a Sentinel) on 127.0.0.1:`port` answers a PING; throws `failure` after 5 s. */
export async function redisAnswers(port: number, failure: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = new Redis({ port, host: '127.0.0.1', protocol: 2, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(failure);
      await sleep(50);
    } finally {
      probe.disconnect();
    }
  }
}
