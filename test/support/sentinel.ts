import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { freePort, redisAnswers } from './redis';
import { waitFor } from './wait';

export const SENTINEL_NAME = 'pricestream';

/** The binary that runs Sentinel: Debian's redis-sentinel if present, else redis-server --sentinel. */
function sentinelCommand(conf: string): [string, string[]] {
  const debian = ['/usr/bin/redis-sentinel', '/usr/local/bin/redis-sentinel'].find((p) => fs.existsSync(p));
  return debian ? [debian, [conf]] : ['redis-server', [conf, '--sentinel']];
}

type Node = { name: string; port: number; child: ChildProcess };

/**
 * A Redis primary, one replica and three Sentinels on free ports, each in its own directory under
 * one temporary directory; `stop()` kills them all and removes it. Sentinel sees a primary down
 * after `downAfterMs` and promotes the replica (quorum 2 of 3).
 */
export class SentinelSet {
  readonly nodes = new Map<string, Node>();

  private constructor(readonly dir: string) {}

  static async start(downAfterMs = 1000): Promise<SentinelSet> {
    const set = new SentinelSet(fs.mkdtempSync(path.join(os.tmpdir(), 'price-stream-sentinel-')));
    try {
      const primary = await set.spawnRedis('primary', []);
      await set.spawnRedis('replica', ['--replicaof', '127.0.0.1', String(primary)]);
      for (const name of ['sentinel-1', 'sentinel-2', 'sentinel-3']) await set.spawnSentinel(name, primary, downAfterMs);
      await set.settled(primary);
      return set;
    } catch (err) {
      await set.stop();
      throw err;
    }
  }

  port(name: string): number {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node.port;
  }

  /** `REDIS_SENTINELS` for the service. */
  get sentinels(): string {
    return ['sentinel-1', 'sentinel-2', 'sentinel-3'].map((n) => `127.0.0.1:${this.port(n)}`).join(',');
  }

  client(name: string): Redis {
    const c = new Redis({ port: this.port(name), host: '127.0.0.1', protocol: 2, lazyConnect: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    return c;
  }

  /** Kills one node at once (SIGKILL). */
  async kill(name: string): Promise<void> {
    const node = this.nodes.get(name);
    if (!node || node.child.exitCode !== null || node.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => node.child.once('exit', () => resolve()));
    node.child.kill('SIGKILL');
    await exited;
  }

  /** The primary's port as the Sentinels report it. */
  async primaryPort(): Promise<number> {
    const s = this.client('sentinel-1');
    try {
      const [, port] = (await s.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as [string, string];
      return Number(port);
    } finally {
      s.disconnect();
    }
  }

  async stop(): Promise<void> {
    for (const name of this.nodes.keys()) await this.kill(name);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async spawnRedis(name: string, args: string[]): Promise<number> {
    const port = await freePort();
    const dir = this.nodeDir(name);
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' });
    this.nodes.set(name, { name, port, child });
    await this.answers(port);
    return port;
  }

  private async spawnSentinel(name: string, primaryPort: number, downAfterMs: number): Promise<void> {
    const port = await freePort();
    const dir = this.nodeDir(name);
    const conf = path.join(dir, 'sentinel.conf');
    fs.writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} ${downAfterMs}`,
        `sentinel failover-timeout ${SENTINEL_NAME} 3000`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
        '',
      ].join('\n'),
    );
    const [cmd, args] = sentinelCommand(conf);
    const child = spawn(cmd, args, { stdio: 'ignore' });
    this.nodes.set(name, { name, port, child });
    await this.answers(port);
  }

  /** Until the replica is in sync and every Sentinel knows the replica and the two other Sentinels. */
  private async settled(primaryPort: number): Promise<void> {
    const replica = this.client('replica');
    const sentinels = ['sentinel-1', 'sentinel-2', 'sentinel-3'].map((n) => this.client(n));
    try {
      await waitFor(async () => String(await replica.info('replication')).includes('master_link_status:up'), 10_000, () => 'replica not in sync');
      await waitFor(
        async () => {
          for (const s of sentinels) {
            const [, port] = (await s.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as [string, string];
            const replicas = (await s.call('SENTINEL', 'replicas', SENTINEL_NAME)) as unknown[];
            const others = (await s.call('SENTINEL', 'sentinels', SENTINEL_NAME)) as unknown[];
            if (Number(port) !== primaryPort || replicas.length !== 1 || others.length !== 2) return false;
          }
          return true;
        },
        20_000,
        () => 'the Sentinels did not discover each other and the replica',
      );
    } finally {
      replica.disconnect();
      for (const s of sentinels) s.disconnect();
    }
  }

  private nodeDir(name: string): string {
    const dir = path.join(this.dir, name);
    fs.mkdirSync(dir);
    return dir;
  }

  private answers(port: number): Promise<void> {
    return redisAnswers(port, `nothing answers on port ${port}`);
  }
}
