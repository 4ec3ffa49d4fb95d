/** Starts the service under test as a child process, and reads its CPU and memory from /proc. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

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

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export type StartedService = { url: string; pid: number; child: ChildProcess; logFile: string; stop(): Promise<number | null> };

/** `node [nodeArgs] dist/main.js` with the given environment; its output goes to `logFile`. */
export async function startService(opts: { root: string; env: Record<string, string>; nodeArgs: string[]; logFile: string; host: string }): Promise<StartedService> {
  const port = await freePort(opts.host);
  const log = createWriteStream(opts.logFile);
  const child = spawn(process.execPath, [...opts.nodeArgs, path.join(opts.root, 'dist', 'main.js')], {
    cwd: opts.root,
    env: { ...process.env, ...opts.env, PORT: String(port), HOST: opts.host },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://${opts.host}:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode} at start-up; see ${opts.logFile}`);
    try {
      const res = await fetch(`${url}/health/live`);
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
    pid: child.pid!,
    child,
    logFile: opts.logFile,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
