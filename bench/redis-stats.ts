/**
 * `--redis-stats`: what the Redis behind the instances did over the measured window, from two
 * readings of its INFO (cpu, stats, commandstats, clients) and, where this machine can read it,
 * `/proc/<redis pid>/stat`. Redis counts every client: on a shared Redis the deltas include
 * whatever else used it in the window (its connected clients are reported for that reason).
 */
import { execFileSync } from 'node:child_process';
import Redis from 'ioredis';
import { sampleProc } from './service';

export type RedisReading = {
  atMs: number;
  pid: number | null;
  version: string | null;
  connectedClients: number | null;
  /** used_cpu_sys + used_cpu_user (every thread of the Redis process), in ms. */
  cpuMs: number | null;
  /** The same from /proc/<pid>/stat (utime + stime), when Redis runs on this machine and /proc is readable. */
  procCpuMs: number | null;
  netOutputBytes: number | null;
  netInputBytes: number | null;
  commandsProcessed: number | null;
  /** calls per command (`cmdstat_xadd` → `xadd`). */
  calls: Record<string, number>;
  /** The started instances' own connections to Redis (`ss -ti`), null where `ss` is not there. */
  instanceSockets: SocketBytes | null;
};

/** TCP connections of some processes to one port, from `ss -tinp` (tcp_info): what they received and sent. */
export type SocketBytes = Record<string, { pid: number; bytesReceived: number; bytesSent: number }>;

export type RedisStats = {
  url: string;
  before: RedisReading;
  after: RedisReading;
  windowMs: number;
  /** Ticks published in the window (from the history): the divisor of the per-tick figures. */
  ticks: number;
  /** CPU of Redis over the window, % of one core: from INFO cpu, and from /proc where readable. */
  cpuPct: number | null;
  procCpuPct: number | null;
  /** Command calls in the window (the harness's own INFO calls left out), and per published tick. */
  commands: number;
  commandsPerTick: number | null;
  /** Calls per command over the window, most first, and per tick. */
  byCommand: { command: string; calls: number; perTick: number | null }[];
  netOutputBytes: number | null;
  netOutputBytesPerTick: number | null;
  netInputBytesPerTick: number | null;
  /**
   * Only the started instances' connections (from their sockets, so other clients of a shared
   * Redis do not count): bytes Redis sent them and they sent Redis over the window, and per tick.
   * Per connection (by its local address): one opened in the window counts from its start, one
   * closed in the window is not counted (`closed`).
   */
  instances: { connections: number; closed: number; bytesReceived: number; bytesReceivedPerTick: number | null; bytesSentPerTick: number | null } | null;
};

/** `ss -tinpH` for established connections to `port`, summed for the given pids. Null where ss cannot be run. */
export function socketBytes(pids: number[], port: number): SocketBytes | null {
  let out: string;
  try {
    out = execFileSync('ss', ['-tinpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return null;
  }
  const want = new Set(pids);
  const r: SocketBytes = {};
  // One line per socket (addresses, `users:(("node",pid=N,fd=M))`), then an indented line of tcp_info.
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const pid = /pid=(\d+)/.exec(lines[i])?.[1];
    if (pid === undefined || /^\s/.test(lines[i])) continue;
    const info = lines[i + 1] ?? '';
    if (!want.has(Number(pid))) continue;
    const received = Number(/bytes_received:(\d+)/.exec(info)?.[1] ?? 0);
    const sent = Number(/bytes_acked:(\d+)/.exec(info)?.[1] ?? 0);
    const local = lines[i].trim().split(/\s+/)[2] ?? `?${i}`;
    r[local] = { pid: Number(pid), bytesReceived: received, bytesSent: sent };
  }
  return r;
}

const fieldsOf = (info: string): Map<string, string> => {
  const m = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
};

const num = (m: Map<string, string>, k: string): number | null => (m.has(k) && Number.isFinite(Number(m.get(k))) ? Number(m.get(k)) : null);

/** One reading of INFO over a short-lived connection. */
export async function readRedis(url: string, instancePids: number[] = []): Promise<RedisReading> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  try {
    await redis.connect();
    // One INFO with several sections: the figures come from the same moment.
    const f = fieldsOf(await redis.info('server', 'clients', 'stats', 'cpu', 'commandstats'));
    const atMs = Date.now();
    const calls: Record<string, number> = {};
    for (const [k, v] of f) {
      if (!k.startsWith('cmdstat_')) continue;
      const c = /(?:^|,)calls=(\d+)/.exec(v);
      if (c) calls[k.slice('cmdstat_'.length)] = Number(c[1]);
    }
    const pid = num(f, 'process_id');
    const sys = num(f, 'used_cpu_sys');
    const user = num(f, 'used_cpu_user');
    const proc = pid === null ? null : sampleProc(pid);
    const port = Number(new URL(url).port || 6379);
    return {
      atMs,
      pid,
      version: f.get('redis_version') ?? null,
      connectedClients: num(f, 'connected_clients'),
      cpuMs: sys !== null && user !== null ? (sys + user) * 1000 : null,
      procCpuMs: proc?.cpuMs ?? null,
      netOutputBytes: num(f, 'total_net_output_bytes'),
      netInputBytes: num(f, 'total_net_input_bytes'),
      commandsProcessed: num(f, 'total_commands_processed'),
      calls,
      instanceSockets: instancePids.length ? socketBytes(instancePids, port) : null,
    };
  } finally {
    redis.disconnect();
  }
}

/** The deltas between two readings, per published tick. */
export function redisStats(url: string, before: RedisReading, after: RedisReading, ticks: number): RedisStats {
  const windowMs = after.atMs - before.atMs;
  const delta = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);
  const perTick = (v: number | null): number | null => (v === null || ticks <= 0 ? null : v / ticks);
  const pct = (v: number | null): number | null => (v === null || windowMs <= 0 ? null : (100 * v) / windowMs);
  const byCommand = Object.keys(after.calls)
    .filter((c) => c !== 'info')
    .map((command) => ({ command, calls: after.calls[command] - (before.calls[command] ?? 0) }))
    .filter((c) => c.calls > 0)
    .sort((a, b) => b.calls - a.calls)
    .map((c) => ({ ...c, perTick: perTick(c.calls) }));
  const commands = byCommand.reduce((a, c) => a + c.calls, 0);
  const out = delta(before.netOutputBytes, after.netOutputBytes);
  return {
    url: url.replace(/\/\/[^@/]*@/, '//***@'),
    before,
    after,
    windowMs,
    ticks,
    cpuPct: pct(delta(before.cpuMs, after.cpuMs)),
    procCpuPct: pct(delta(before.procCpuMs, after.procCpuMs)),
    commands,
    commandsPerTick: perTick(commands),
    byCommand,
    netOutputBytes: out,
    netOutputBytesPerTick: perTick(out),
    netInputBytesPerTick: perTick(delta(before.netInputBytes, after.netInputBytes)),
    instances: before.instanceSockets && after.instanceSockets ? socketDeltas(before.instanceSockets, after.instanceSockets, perTick) : null,
  };
}

function socketDeltas(before: SocketBytes, after: SocketBytes, perTick: (v: number) => number | null): NonNullable<RedisStats['instances']> {
  let received = 0;
  let sent = 0;
  for (const [k, a] of Object.entries(after)) {
    const b = before[k]?.pid === a.pid ? before[k] : undefined;
    received += a.bytesReceived - (b?.bytesReceived ?? 0);
    sent += a.bytesSent - (b?.bytesSent ?? 0);
  }
  return {
    connections: Object.keys(after).length,
    closed: Object.keys(before).filter((k) => !(k in after)).length,
    bytesReceived: received,
    bytesReceivedPerTick: perTick(received),
    bytesSentPerTick: perTick(sent),
  };
}

/** Deletes the keys `<prefix>:*` (SCAN, then UNLINK in batches): the keys the started instances wrote under their own prefix. */
export async function deletePrefix(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}
