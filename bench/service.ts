/** Starts the service under test as a child process, and reads its CPU and memory from /proc. */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as path from 'node:path';
import { listen } from '../src/util/listen';

export type ProcSample = { atMs: number; cpuMs: number; rssKb: number; hwmKb: number; fds: number | null };

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU time (user + system) and memory of a process, or null when it is gone or /proc is not there. */
export function sampleProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    let fds: number | null = null;
    try {
      fds = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      fds = null;
    }
    return { atMs: Date.now(), cpuMs: (cpuTicks * 1000) / ticksPerSecond(), rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), fds };
  } catch {
    return null;
  }
}

/** One process of the service's tree at one moment. */
export type ProcessSample = ProcSample & {
  pid: number;
  ppid: number;
  /**
   * The worker slot of a direct child of the service pid: its WORKER_INDEX environment variable
   * (the service's cluster primary forks worker k with WORKER_INDEX=k, and a restarted worker
   * with the same k), or else by start order: 1..n, and a child started after one died takes the
   * lowest free slot. Null for the service pid itself and for deeper descendants.
   */
  slot: number | null;
};

/** The service's whole process tree at one moment: CPU, RSS, HWM and fds summed, and each process on its own. */
export type TreeSample = ProcSample & { processes: ProcessSample[] };

type ProcStat = { state: string; ppid: number; startTicks: number; cpuTicks: number };

function readStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // state (field 3), ppid (4), utime (14), stime (15), starttime (22)
    return { state: f[0], ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]), startTicks: Number(f[19]) };
  } catch {
    return null;
  }
}

/** A process's WORKER_INDEX (from the environment it started with), if it is a whole number >= 1. */
export function workerIndexOf(pid: number): number | null {
  try {
    const m = /(?:^|\0)WORKER_INDEX=(\d+)(?:\0|$)/.exec(readFileSync(`/proc/${pid}/environ`, 'latin1'));
    return m && Number(m[1]) >= 1 ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The children of a process: /proc/<pid>/task/<tid>/children of each of its threads, or a scan of every /proc/<n>/stat where the kernel has no such file. */
export function childPids(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out = new Set<number>();
  let noChildrenFile = false;
  for (const tid of tids) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && tid === String(pid)) noChildrenFile = true;
    }
  }
  if (!noChildrenFile) return [...out];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (readStat(Number(name))?.ppid === pid) out.add(Number(name));
  }
  return [...out];
}

/** A process and all its descendants, the root first; each listed before its children. */
export function processTree(root: number): { pid: number; ppid: number }[] {
  const out = [{ pid: root, ppid: readStat(root)?.ppid ?? 0 }];
  const seen = new Set([root]);
  for (let i = 0; i < out.length; i++) {
    for (const c of childPids(out[i].pid)) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push({ pid: c, ppid: out[i].pid });
    }
  }
  return out;
}

/**
 * Samples a process and its descendants (say a cluster primary and its workers). Processes come
 * and go (a worker may be killed and restarted): the tree's CPU time is cumulative over every
 * process seen since the first sample, a process that is gone counting with its last reading
 * (what it used between that reading and its end is not seen). RSS, HWM and fds are sums over
 * the processes alive at the moment. A zombie (dead, not yet reaped) counts as gone.
 * With a single process every figure is that of `sampleProc(root)`.
 */
export class TreeSampler {
  /** By pid and start time (a pid may be reused): last CPU reading, and the slot of a direct child (whether from its WORKER_INDEX). */
  private readonly known = new Map<string, { pid: number; cpuMs: number; slot: number | null; fromEnv: boolean; alive: boolean }>();
  private readonly slotsInUse = new Map<number, string>();

  constructor(readonly root: number) {}

  /** The tree now, or null when the root process is gone. */
  sample(): TreeSample | null {
    const root = sampleProc(this.root);
    if (!root) return null;
    const found: { key: string; s: ProcSample; ppid: number; startTicks: number }[] = [];
    for (const { pid, ppid } of processTree(this.root)) {
      const st = readStat(pid);
      if (pid === this.root) {
        // The root counts as it is, as sampleProc reads it.
        found.push({ key: `${pid}:${st?.startTicks ?? 0}`, s: root, ppid, startTicks: st?.startTicks ?? 0 });
        continue;
      }
      if (!st || st.state === 'Z') continue;
      const s = sampleProc(pid);
      if (!s || !Number.isFinite(s.rssKb)) continue;
      found.push({ key: `${pid}:${st.startTicks}`, s, ppid, startTicks: st.startTicks });
    }
    const alive = new Set(found.map((f) => f.key));
    // Deaths first, so that a worker restarted between two samples takes the slot it left.
    for (const [key, k] of this.known) {
      if (k.alive && !alive.has(key)) {
        k.alive = false;
        if (k.slot !== null && this.slotsInUse.get(k.slot) === key) this.slotsInUse.delete(k.slot);
      }
    }
    for (const f of [...found].sort((a, b) => a.startTicks - b.startTicks)) {
      const pid = Number(f.key.split(':')[0]);
      let k = this.known.get(f.key);
      if (!k) {
        k = { pid, cpuMs: 0, slot: null, fromEnv: false, alive: true };
        this.known.set(f.key, k);
        if (f.ppid === this.root) {
          let slot = 1;
          while (this.slotsInUse.has(slot)) slot++;
          k.slot = slot;
          this.slotsInUse.set(slot, f.key);
        }
      }
      // Looked at until found: a child seen between its fork and its exec still has its parent's environment.
      if (k.slot !== null && !k.fromEnv) {
        const index = workerIndexOf(pid);
        if (index !== null) {
          if (this.slotsInUse.get(k.slot) === f.key) this.slotsInUse.delete(k.slot);
          k.slot = index;
          k.fromEnv = true;
          this.slotsInUse.set(index, f.key);
        }
      }
      k.cpuMs = f.s.cpuMs;
    }
    const processes: ProcessSample[] = found.map((f) => ({ ...f.s, pid: Number(f.key.split(':')[0]), ppid: f.ppid, slot: this.known.get(f.key)!.slot }));
    const fds = processes.filter((p) => p.fds !== null);
    return {
      atMs: root.atMs,
      cpuMs: [...this.known.values()].reduce((a, k) => a + k.cpuMs, 0),
      rssKb: processes.reduce((a, p) => a + p.rssKb, 0),
      hwmKb: processes.reduce((a, p) => a + p.hwmKb, 0),
      fds: fds.length ? fds.reduce((a, p) => a + p.fds!, 0) : null,
      processes,
    };
  }

  /** Processes of the tree seen by a sample that still run (the same pid and start time, not a zombie). */
  survivors(): number[] {
    return [...this.known.keys()].flatMap((key) => {
      const [pid, start] = key.split(':').map(Number);
      const st = readStat(pid);
      return st && st.state !== 'Z' && st.startTicks === start ? [pid] : [];
    });
  }
}

/** The soft limit on open files of a process (`ulimit -n`), from /proc/<pid>/limits. */
export function openFilesLimit(pid: number | 'self'): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Machine-wide TCP counters (/proc/net/netstat): ListenOverflows counts connections dropped
 * because a listener's accept queue was full (the client then retries its SYN after 1, 3, 7 s).
 */
export function tcpCounters(): { listenOverflows: number; listenDrops: number } | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/).map(Number);
    const get = (n: string): number => values[names.indexOf(n)] ?? NaN;
    return { listenOverflows: get('ListenOverflows'), listenDrops: get('ListenDrops') };
  } catch {
    return null;
  }
}

/** Kernel memory held by TCP sockets, machine-wide (/proc/net/sockstat `TCP: mem`, in pages): unsent and unread bytes live here, not in any RSS. */
export function tcpKernelMemKb(): number | null {
  try {
    const m = /^TCP:.*\bmem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) * 4 : null;
  } catch {
    return null;
  }
}

/** The whole machine's CPU use between two readings of /proc/stat, as a share of all cores (0..1). */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3] + (cpu[4] ?? 0);
    const total = cpu.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** The lowest port the kernel hands out to outgoing connections (Linux; 32768 elsewhere). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 2048) return low;
  } catch {
    // not Linux
  }
  return 32768;
}

function tryListen(port: number, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : null));
    });
  });
}

/**
 * A port to start a service on: free now, and below the range the kernel takes ports from for
 * outgoing connections. A port from that range (listen(0)) may be taken between this check and
 * the service's own bind as the local port of any connection on the machine (seen: EADDRINUSE in
 * CI while other tests opened connections), one below it only by another listener.
 */
export async function freePort(host: string): Promise<number> {
  const high = ephemeralLow();
  const low = Math.max(1024, high - 12_000);
  for (let i = 0; i < 50; i++) {
    const port = await tryListen(low + Math.floor(Math.random() * (high - low)), host);
    if (port !== null) return port;
  }
  const port = await tryListen(0, host);
  if (port === null) throw new Error('no free port');
  return port;
}

/** What the harness needs of the service's process: a child of its own, or one a `HeldPort`'s supervisor started. */
export type ServiceProcess = {
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
};

export type StartedService = { url: string; pid: number; child: ServiceProcess; logFile: string; stop(): Promise<number | null> };

/**
 * `--hold-port`: the port's listening sockets (SO_REUSEPORT), made here and held by a supervisor
 * process (bench/supervisor.ts) that starts the service on them, as systemd's socket activation
 * does (LISTEN_FDS): they outlive every service process, so what connects during a restart waits
 * in their queues instead of being refused.
 */
export type HeldPort = {
  port: number;
  /** The supervisor's. */
  pid: number;
  /** Starts `node [args]` on the held sockets, its output appended to logFile. */
  start(args: string[], cwd: string, env: Record<string, string>, logFile: string): Promise<{ pid: number; child: ServiceProcess }>;
  close(): Promise<void>;
};

class SupervisedProcess extends EventEmitter implements ServiceProcess {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  constructor(readonly pid: number) {
    super();
  }
  /** As ChildProcess.kill: false, and nothing sent, once it has exited (its pid may be another process' by then). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
  exited(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    // A process gone without a word (its supervisor died) counts as killed.
    this.signalCode = code === null && signal === null ? 'SIGKILL' : signal;
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

type SupervisorMessage =
  | { type: 'ready' }
  | { type: 'started'; id: number; pid: number }
  | { type: 'failed'; id: number; error: string }
  | { type: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null };

export async function holdPort(host: string, sockets: number, backlog = 4096): Promise<HeldPort> {
  const port = await freePort(host);
  const servers: net.Server[] = [];
  const closeServers = () => Promise.all(servers.map((s) => new Promise((resolve) => (s.listening ? s.close(resolve) : resolve(undefined)))));
  let supervisor: ReturnType<typeof spawn>;
  try {
    for (let i = 0; i < sockets; i++) {
      const server = net.createServer();
      servers.push(server);
      await listen(server, { port, host, backlog, reusePort: true });
    }
    const fds = servers.map((s) => (s as unknown as { _handle: { fd: number } })._handle.fd);
    supervisor = spawn(process.execPath, [path.join(__dirname, 'supervisor.js')], {
      env: { ...process.env, HELD_SOCKETS: String(sockets) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds],
    });
    await new Promise<void>((resolve, reject) => {
      supervisor.once('message', () => resolve());
      supervisor.once('error', reject);
      supervisor.once('exit', (code) => reject(new Error(`the supervisor exited (${code}) before it was ready`)));
    });
  } finally {
    // Only the supervisor holds them now (and the services it starts): this process never accepts on them.
    await closeServers();
  }
  // Each start is a request by id: its process (made as soon as it is reported started, so that an
  // exit reported in the same read is not lost), or its failure.
  let nextId = 0;
  const pending = new Map<number, { resolve: (child: SupervisedProcess) => void; reject: (err: Error) => void }>();
  const children = new Map<number, SupervisedProcess>();
  let gone: Error | null = null;
  supervisor.on('error', () => undefined); // a send after its exit: the 'exit' below says it
  supervisor.on('message', (m: SupervisorMessage) => {
    if (m.type === 'started') {
      const child = new SupervisedProcess(m.pid);
      children.set(m.id, child);
      pending.get(m.id)?.resolve(child);
      pending.delete(m.id);
    } else if (m.type === 'failed') {
      pending.get(m.id)?.reject(new Error(`the supervisor could not start the service: ${m.error}`));
      pending.delete(m.id);
    } else if (m.type === 'exit') {
      children.get(m.id)?.exited(m.code, m.signal);
      children.delete(m.id);
    }
  });
  supervisor.once('exit', (code, signal) => {
    gone = new Error(`the supervisor exited (${code ?? signal})`);
    for (const p of pending.values()) p.reject(gone);
    pending.clear();
    // Its services die with it (it kills them when the harness goes); any left is reported gone.
    for (const child of children.values()) child.exited(null, null);
    children.clear();
  });
  return {
    port,
    pid: supervisor.pid!,
    start: async (args, cwd, env, logFile) => {
      if (gone) throw gone;
      const id = nextId++;
      const child = await new Promise<SupervisedProcess>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        supervisor.send({ type: 'start', id, args, cwd, env, logFile });
      });
      return { pid: child.pid, child };
    },
    close: async () => {
      if (supervisor.exitCode !== null || supervisor.signalCode !== null) return;
      const exited = new Promise((resolve) => supervisor.once('exit', resolve));
      supervisor.disconnect();
      await exited;
    },
  };
}

/**
 * `node [nodeArgs] dist/main.js` with the given environment, on `port` (default: a free one); its
 * output goes to `logFile` (appended to). With `held`, on its sockets, started by its supervisor.
 */
export async function startService(opts: { root: string; env: Record<string, string>; nodeArgs: string[]; logFile: string; host: string; port?: number; held?: HeldPort }): Promise<StartedService> {
  const port = opts.held?.port ?? opts.port ?? (await freePort(opts.host));
  const env = { ...process.env, ...opts.env, PORT: String(port), HOST: opts.host } as Record<string, string>;
  const args = [...opts.nodeArgs, path.join(opts.root, 'dist', 'main.js')];
  let child: ServiceProcess;
  let pid: number;
  if (opts.held) ({ child, pid } = await opts.held.start(args, opts.root, env, opts.logFile));
  else {
    const log = createWriteStream(opts.logFile, { flags: 'a' });
    const own = spawn(process.execPath, args, { cwd: opts.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    own.stdout!.pipe(log);
    own.stderr!.pipe(log);
    child = own;
    pid = own.pid!;
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://${opts.host}:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode} at start-up; see ${opts.logFile}`);
    try {
      // Once the port is taken (at once, when held), the request waits in its queue until the app serves.
      const res = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(5000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not answer /health/live within 30 s; see ${opts.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid,
    child,
    logFile: opts.logFile,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Open stream connections per worker of the service, from its /metrics. */
export type WorkerConnections = {
  atMs: number;
  /** `price_stream_worker_subscribers` by its `worker` label (1..n, the worker's slot); `pid` when the gauge has that label too. */
  workers: { worker: string; subscribers: number; pid: number | null }[];
};

/** Reads a metric's samples out of a Prometheus text exposition: labels and value of each line of that name. */
export function metricSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const m = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

/**
 * `price_stream_worker_subscribers{worker="k"}` from `<url>/metrics`: null when the service has no
 * such gauge (one process) or /metrics does not answer.
 */
export async function workerConnections(url: string): Promise<WorkerConnections | null> {
  try {
    const res = await fetch(`${url}/metrics`);
    if (!res.ok) return null;
    const atMs = Date.now();
    const samples = metricSamples(await res.text(), 'price_stream_worker_subscribers').filter((s) => s.labels.worker !== undefined);
    if (samples.length === 0) return null;
    const workers = samples
      .map((s) => ({ worker: s.labels.worker, subscribers: s.value, pid: s.labels.pid !== undefined && /^\d+$/.test(s.labels.pid) ? Number(s.labels.pid) : null }))
      .sort((a, b) => Number(a.worker) - Number(b.worker) || a.worker.localeCompare(b.worker));
    return { atMs, workers };
  } catch {
    return null;
  }
}
