/**
 * The service as a process tree (a cluster primary and its workers): figures per process from
 * the tree samples, and per worker joined with the connections its /metrics reports.
 */
import type { TreeSample, WorkerConnections } from './service';

/** One process of the service over a phase. */
export type PhaseProcess = {
  pid: number;
  /** Worker slot (direct children of the service pid: WORKER_INDEX, else by start order); null for the service pid itself. */
  slot: number | null;
  /** Its CPU time in the phase over the phase's length; a process started in the phase counts from its start, one that ended from its last reading. */
  cpuPct: number;
  /** RSS at the end of the phase; null when it was gone by then. */
  rssKb: number | null;
  maxRssKb: number;
  maxFds: number | null;
};

/** Per process over a phase, from the readings at its start and end and those in between (in time order). */
export function phaseProcesses(readings: TreeSample[]): PhaseProcess[] {
  if (readings.length < 2) return [];
  const first = readings[0];
  const last = readings[readings.length - 1];
  const ms = last.atMs - first.atMs;
  const byPid = new Map<number, PhaseProcess & { baseCpuMs: number; lastCpuMs: number }>();
  for (const r of readings) {
    for (const p of r.processes) {
      let e = byPid.get(p.pid);
      if (!e) {
        const base = r === first ? p.cpuMs : 0;
        e = { pid: p.pid, slot: p.slot, cpuPct: 0, rssKb: null, maxRssKb: p.rssKb, maxFds: p.fds, baseCpuMs: base, lastCpuMs: p.cpuMs };
        byPid.set(p.pid, e);
      }
      e.lastCpuMs = p.cpuMs;
      e.slot = p.slot;
      e.maxRssKb = Math.max(e.maxRssKb, p.rssKb);
      if (p.fds !== null) e.maxFds = Math.max(e.maxFds ?? 0, p.fds);
      if (r === last) e.rssKb = p.rssKb;
    }
  }
  return [...byPid.values()].map(({ baseCpuMs, lastCpuMs, ...e }) => ({ ...e, cpuPct: ms > 0 ? (100 * (lastCpuMs - baseCpuMs)) / ms : 0 }));
}

/** Every process of the tree that any reading saw. */
export type SeenProcess = {
  pid: number;
  ppid: number;
  slot: number | null;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Whether the last reading of the tree still had it. */
  alive: boolean;
  maxRssKb: number;
  maxFds: number | null;
  fdLimit: number | null;
};

export function seenProcesses(readings: TreeSample[], fdLimits: Map<number, number | null>): SeenProcess[] {
  const byPid = new Map<number, SeenProcess>();
  const sorted = [...readings].sort((a, b) => a.atMs - b.atMs);
  for (const r of sorted) {
    for (const p of r.processes) {
      let e = byPid.get(p.pid);
      if (!e) {
        e = { pid: p.pid, ppid: p.ppid, slot: p.slot, firstSeenMs: r.atMs, lastSeenMs: r.atMs, alive: false, maxRssKb: p.rssKb, maxFds: p.fds, fdLimit: fdLimits.get(p.pid) ?? null };
        byPid.set(p.pid, e);
      }
      e.lastSeenMs = r.atMs;
      e.slot = p.slot;
      e.maxRssKb = Math.max(e.maxRssKb, p.rssKb);
      if (p.fds !== null) e.maxFds = Math.max(e.maxFds ?? 0, p.fds);
    }
  }
  const lastReading = sorted[sorted.length - 1];
  for (const p of lastReading?.processes ?? []) byPid.get(p.pid)!.alive = true;
  return [...byPid.values()];
}

/** One worker of the service: its slot, the connections /metrics gave it, and what its process used. */
export type ServiceWorker = {
  /** The gauge's `worker` label, or the slot the harness gave the process. */
  worker: string;
  /** The process serving the slot at the end (at the peak if it was gone by the end). */
  pid: number | null;
  /** Every process seen in the slot, in order: more than one when a worker was restarted. */
  pids: number[];
  connsPeak: number | null;
  connsEnd: number | null;
  rssKbPeak: number | null;
  rssKbEnd: number | null;
  /** Over the load phase, summed over the slot's processes. */
  cpuPct: number | null;
  maxFds: number | null;
  fdLimit: number | null;
};

export type ServiceWorkers = {
  /** Whether /metrics had `price_stream_worker_subscribers`; without it (and without child processes) the service is one process. */
  gauge: boolean;
  /** Processes of the service's tree at the peak (1 without workers). */
  processes: number;
  peak: WorkerConnections | null;
  end: WorkerConnections | null;
  workers: ServiceWorker[];
  /** The service pid itself, when it has worker processes (the cluster primary). */
  primary: { pid: number; rssKbPeak: number | null; rssKbEnd: number | null; cpuPct: number | null; maxFds: number | null; fdLimit: number | null } | null;
};

/**
 * Joins the gauge's workers (by their `worker` label, or `pid` label where it has one) with the
 * processes the harness sampled (by slot). Without child processes a gauge of one worker is the
 * service pid itself.
 */
export function serviceWorkers(args: {
  rootPid: number | null;
  peak: WorkerConnections | null;
  end: WorkerConnections | null;
  peakTree: TreeSample | null;
  endTree: TreeSample | null;
  loadPhase: PhaseProcess[];
  seen: SeenProcess[];
}): ServiceWorkers {
  const { rootPid, peak, end, peakTree, endTree, loadPhase, seen } = args;
  const children = seen.filter((p) => p.slot !== null);
  const slotPids = (slot: number): number[] => children.filter((p) => p.slot === slot).sort((a, b) => a.firstSeenMs - b.firstSeenMs).map((p) => p.pid);
  const rssIn = (tree: TreeSample | null, pid: number | null): number | null => (pid === null ? null : (tree?.processes.find((p) => p.pid === pid)?.rssKb ?? null));
  const labels = new Set<string>([...(peak?.workers ?? []), ...(end?.workers ?? [])].map((w) => w.worker));
  for (const p of children) labels.add(String(p.slot));
  const workers: ServiceWorker[] = [];
  for (const label of [...labels].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))) {
    const g0 = peak?.workers.find((w) => w.worker === label);
    const g1 = end?.workers.find((w) => w.worker === label);
    let pids: number[];
    if (g0?.pid != null || g1?.pid != null) pids = [...new Set([g0?.pid, g1?.pid].filter((p): p is number => p != null))];
    else if (children.length === 0 && labels.size === 1 && rootPid !== null) pids = [rootPid];
    else pids = /^\d+$/.test(label) ? slotPids(Number(label)) : [];
    const procs = seen.filter((p) => pids.includes(p.pid));
    const inLoad = loadPhase.filter((p) => pids.includes(p.pid));
    const current = [...procs].sort((a, b) => b.firstSeenMs - a.firstSeenMs).find((p) => endTree?.processes.some((q) => q.pid === p.pid)) ?? procs[procs.length - 1];
    const atPeak = pids.find((pid) => peakTree?.processes.some((q) => q.pid === pid)) ?? null;
    const atEnd = pids.find((pid) => endTree?.processes.some((q) => q.pid === pid)) ?? null;
    const fds = procs.map((p) => p.maxFds).filter((f): f is number => f !== null);
    workers.push({
      worker: label,
      pid: current?.pid ?? null,
      pids,
      connsPeak: g0?.subscribers ?? null,
      connsEnd: g1?.subscribers ?? null,
      rssKbPeak: rssIn(peakTree, atPeak),
      rssKbEnd: rssIn(endTree, atEnd),
      cpuPct: inLoad.length ? inLoad.reduce((a, p) => a + p.cpuPct, 0) : null,
      maxFds: fds.length ? Math.max(...fds) : null,
      fdLimit: current?.fdLimit ?? null,
    });
  }
  const root = rootPid === null ? undefined : seen.find((p) => p.pid === rootPid);
  const rootLoad = loadPhase.find((p) => p.pid === rootPid);
  return {
    gauge: peak !== null || end !== null,
    processes: peakTree?.processes.length ?? 1,
    peak,
    end,
    workers,
    primary:
      root && children.length > 0
        ? { pid: root.pid, rssKbPeak: rssIn(peakTree, root.pid), rssKbEnd: rssIn(endTree, root.pid), cpuPct: rootLoad?.cpuPct ?? null, maxFds: root.maxFds, fdLimit: root.fdLimit }
        : null,
  };
}
