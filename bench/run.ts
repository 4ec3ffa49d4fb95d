/**
 * The benchmark's parent process: starts the service (or targets one), forks the workers,
 * runs the phases, samples the service from /proc, finds out what was published and merges
 * the workers' findings into one result.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HistoryResponse, Tick } from '../src/shared/wire';
import { RESTARTING_STORMS, type BenchOptions, type StormTrigger } from './options';
import { TRANSPORTS, type FromWorker, type StormCounts, type ToWorker, type Transport, type TransportResult, type WorkerPlan, type WorkerResult } from './protocol';
import { phaseProcesses, seenProcesses, serviceWorkers, type PhaseProcess, type SeenProcess, type ServiceWorkers } from './processes';
import { runRest, type RestRouteResult } from './rest';
import { deletePrefix, readRedis, redisStats, type RedisReading, type RedisStats } from './redis-stats';
import { holdPort, machineCpu, metricSamples, openFilesLimit, tcpCounters, tcpKernelMemKb, startService, TreeSampler, workerConnections, type HeldPort, type StartedService, type TreeSample } from './service';
import { Histogram, mergeCounts, timeOf, type Counts, type LatencySummary } from './stats';

export type TransportSummary = Omit<TransportResult, 'latency' | 'reconnectToOpen' | 'reconnectToFirstTick'> & {
  deliveredPct: number | null;
  /** wireBytes / wireTicks: socket bytes received per tick delivered over the window (heartbeats, pings and frame overhead included). */
  bytesPerTick: number | null;
  emfile: number;
  /** One per phase: the load alone, then (with --slow) the load beside the never-reading subscribers. */
  latency: LatencySummary[];
  reconnectToOpen: LatencySummary;
  reconnectToFirstTick: LatencySummary;
};

export type PhaseSummary = {
  name: 'load' | 'slow';
  startMs: number;
  endMs: number;
  serviceCpuPct: number | null;
  serviceRssKb: number | null;
  serviceRssMaxKb: number | null;
  serviceRssMinKb: number | null;
  machineBusyPct: number | null;
  /** Machine-wide accept-queue overflows during the phase (other programs on the machine count too). */
  listenOverflows: number | null;
  /** Kernel TCP memory (all sockets on the machine) at the end of the phase: where a non-reader's backlog sits first. */
  tcpKernelMemKb: number | null;
  /** Each process of the service (the pid and its descendants) over the phase; the figures above are their sums. */
  processes: PhaseProcess[];
};

/** --kill-worker-at: which worker process got SIGKILL, and what the subscribers made of it. */
export type KillSummary = {
  atS: number;
  atMs: number | null;
  pid: number | null;
  slot: number | null;
  /** The killed worker's connections at the peak (`price_stream_worker_subscribers`), where the service reports them. */
  heldAtPeak: number | null;
  /** The process seen in the same slot after the kill (the worker restarted), if any. */
  replacementPid: number | null;
  /** Subscribers whose stream dropped at or after the kill, and how many of them were established again (resuming from their last id). */
  dropped: number;
  reestablished: number;
  dropToOpen: LatencySummary;
  error?: string;
};

/** Storm figures of a group of subscribers, merged over the load-generating workers. */
export type StormFigures = Omit<StormCounts, 'dropToOpen' | 'dropToWhole' | 'signalToWhole'> & { dropToOpen: LatencySummary; dropToWhole: LatencySummary; signalToWhole: LatencySummary };

/** --storm: what ended every stream, and how the subscribers came back (all, and per transport). */
export type StormSummary = {
  trigger: StormTrigger;
  atS: number;
  /** When the signal went out (epoch ms); drops are counted from it. */
  atMs: number | null;
  signal: 'SIGKILL' | 'SIGTERM';
  /** rolling: the instance that got the signal (1), and the instances its subscribers reconnected to; null and [] otherwise. */
  instance: number | null;
  failoverTo: number[];
  /** The process that got it (the service, or its worker), and the one that took over (restarted by the harness, or by the primary). */
  pid: number | null;
  restartedPid: number | null;
  /** sigkill, sigterm, rolling: from the signal to the process's exit, and to the restarted service answering /health/live. */
  exitedAfterMs: number | null;
  upAfterMs: number | null;
  all: StormFigures;
  byTransport: Record<Transport, StormFigures>;
  error?: string;
};

/** --instances N: one started service of several, with the subscribers its load-generating workers held. */
export type InstanceSummary = {
  instance: number;
  url: string;
  pid: number;
  logFile: string;
  /** `price_stream_leader` on its /metrics when every subscriber was connected, and at the end of the window (null: no answer). */
  leaderAtPeak: number | null;
  leaderAtEnd: number | null;
  /** Its open streams (`price_stream_subscribers`, all transports) at the end of the window: with --storm rolling, where the subscribers went. Null: no answer. */
  streamsAtEnd: number | null;
  /** --storm rolling: this instance got SIGTERM at `atS` and was started again as `restartedPid` (the line's subscribers are those that started on it, wherever they went). */
  terminated: { atS: number; pid: number; restartedPid: number | null } | null;
  /** The load-generating workers (indexes) that connected to it. */
  generators: number[];
  transports: Record<Transport, TransportSummary>;
  idleRssKb: number | null;
  /** Its process tree over the load phase: CPU (% of a core) and RSS at the end. */
  cpuPct: number | null;
  rssKb: number | null;
  exitCode: number | null;
};

export type BenchResult = {
  label: string;
  startedAt: string;
  machine: {
    nproc: number;
    memGiB: number;
    node: string;
    cpu: string;
    fdLimit: number | null;
    busyBeforePct: number | null;
    /** os.loadavg() (1, 5, 15 min) before the load and at the end of the measured window: the load generator shares the cores. */
    loadAvgBefore: number[];
    loadAvgEnd: number[] | null;
  };
  options: BenchOptions;
  /** For --instances N: the first instance (the other figures of `service` and `workers` are its own). */
  target: { url: string; pid: number | null; started: boolean; logFile: string | null };
  /** --instances N > 1: each instance, with the delivery and latency of the subscribers on it; null with one. */
  instances: InstanceSummary[] | null;
  /** --redis-stats: Redis over the measured window; null without. */
  redis: RedisStats | null;
  /** `scheduled`: one tick per pair per poll over the window; fewer published means polls ran late or were skipped. */
  published: { mode: BenchOptions['published']; ticks: number; scheduled: number; complete: boolean; windowMs: [number, number]; error?: string };
  transports: Record<Transport, TransportSummary>;
  phases: PhaseSummary[];
  service: {
    idleRssKb: number | null;
    loadedRssKb: number | null;
    rssPerConnectionBytes: number | null;
    /** The same from the lowest RSS in the load window: V8 lets garbage pile up between major GCs, so the end of the window may catch a peak. */
    rssPerConnectionMinBytes: number | null;
    /** Summed over the service's processes at each sample. */
    maxFds: number | null;
    /** The open-files limit of the service pid; each process's own is in `processes`. */
    fdLimit: number | null;
    exitCode: number | null;
    /** Every process of the service's tree seen during the run: the pid, and its workers with their slots. */
    processes: SeenProcess[];
    samples: (TreeSample & { phase: number })[];
  };
  /** Connections per worker (`price_stream_worker_subscribers` on /metrics) at the peak and at the end, with each worker's RSS, CPU and fds. */
  workers: ServiceWorkers;
  kill: KillSummary | null;
  /** --storm: null without. */
  storm: StormSummary | null;
  /** --rest: one row per route; null without. */
  rest: RestRouteResult[] | null;
  ramp: { seconds: number; listenOverflows: number | null };
  generator: { workers: number; nice: number; cpuPct: number; loopDelayP99MaxMs: number; loopDelayMaxMs: number };
  slow: WorkerResult['slow'] & { transport: string };
  assert: { passed: boolean; failures: string[] };
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A forked worker with typed messages and a wait for the next message of a kind. */
class WorkerHandle {
  private readonly queue: FromWorker[] = [];
  private waiters: { type: FromWorker['type']; resolve: (m: FromWorker) => void }[] = [];
  latest: { opened: number; failed: number } = { opened: 0, failed: 0 };
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromWorker) => {
      if (m.type === 'progress' || m.type === 'connected') this.latest = { opened: m.opened, failed: m.failed };
      const w = this.waiters.find((x) => x.type === m.type);
      if (w) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(m);
      } else this.queue.push(m);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m);
  }

  next<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    const i = this.queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0] as Extract<FromWorker, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${this.child.pid}: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      this.exited.then((code) => reject(new Error(`worker ${this.child.pid} exited (${code}) while waiting for "${type}"`)));
      this.waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromWorker, { type: T }>);
        },
      });
    });
  }
}

/** `n` split into `parts` nearly equal whole numbers. */
const split = (n: number, parts: number): number[] => Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));

async function publishedFromHistory(url: string, pairs: string[], timeField: string, fromMs: number, toMs: number): Promise<{ ids: Record<string, string[]>; complete: boolean }> {
  const ids: Record<string, string[]> = {};
  let complete = true;
  for (const pair of pairs) {
    const seen = new Set<string>();
    const out: string[] = [];
    // History pages by id time (`since`, in ms); ticks sharing a millisecond may come twice.
    // A tick's id time is never before its timestamp, so nothing of the window lies before fromMs.
    let since = fromMs;
    for (;;) {
      const res = await fetch(`${url}/api/prices/${encodeURIComponent(pair)}/history?since=${since}&limit=1000`);
      if (!res.ok) throw new Error(`GET history of ${pair}: ${res.status} ${await res.text()}`);
      const page = (await res.json()) as HistoryResponse;
      complete &&= page.complete;
      let newest = since;
      for (const t of page.updates as (Tick & Record<string, unknown>)[]) {
        const at = timeOf(t[timeField]);
        const idMs = Number(t.id.split('-')[0]);
        if (idMs > newest) newest = idMs;
        if (seen.has(t.id) || !(at >= fromMs && at <= toMs)) continue;
        seen.add(t.id);
        out.push(t.id);
      }
      if (page.count < 1000) break;
      if (newest <= since) throw new Error(`history of ${pair}: more than 1000 ticks in one millisecond`);
      since = newest;
    }
    ids[pair] = out;
  }
  return { ids, complete };
}

/** `price_stream_leader` on an instance's /metrics: 1 in the one that polls; null when it does not answer. */
async function leaderOf(url: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/metrics`);
    return res.ok ? (metricSamples(await res.text(), 'price_stream_leader')[0]?.value ?? null) : null;
  } catch {
    return null;
  }
}

/** The open streams of an instance (`price_stream_subscribers` summed over transports) on its /metrics; null when it does not answer. */
async function streamsOn(url: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/metrics`);
    return res.ok ? metricSamples(await res.text(), 'price_stream_subscribers').reduce((a, x) => a + x.value, 0) : null;
  } catch {
    return null;
  }
}

/** The workers' findings per transport, merged: counts summed, histograms merged before percentiles. `checked`: delivery was checked against what was published. */
function mergeTransports(results: WorkerResult[], phaseCount: number, checked: boolean): Record<Transport, TransportSummary> {
  const transports = {} as Record<Transport, TransportSummary>;
  for (const t of TRANSPORTS) {
    const rs = results.map((r) => r.transports[t]);
    const latency: Histogram[] = Array.from({ length: phaseCount }, () => new Histogram());
    const toOpen = new Histogram();
    const toFirst = new Histogram();
    const sum = (k: keyof TransportResult): number => rs.reduce((a, r) => a + (r[k] as number), 0);
    const counts = (k: 'connectFailures' | 'drops' | 'reconnectFailures'): Counts => rs.reduce((a, r) => mergeCounts(a, r[k]), {} as Counts);
    for (const r of rs) {
      r.latency.forEach((h, i) => latency[i]?.merge(h));
      toOpen.merge(r.reconnectToOpen);
      toFirst.merge(r.reconnectToFirstTick);
    }
    const connectFailures = counts('connectFailures');
    const expectedN = sum('expected');
    transports[t] = {
      target: sum('target'),
      heldAtStart: sum('heldAtStart'),
      heldAtEnd: sum('heldAtEnd'),
      connectFailures,
      emfile: connectFailures.EMFILE ?? 0,
      drops: counts('drops'),
      reconnectFailures: counts('reconnectFailures'),
      cuts: sum('cuts'),
      reconnects: sum('reconnects'),
      movedWorker: sum('movedWorker'),
      resets: sum('resets'),
      expected: expectedN,
      delivered: sum('delivered'),
      missing: sum('missing'),
      deliveredPct: checked && expectedN > 0 ? (100 * sum('delivered')) / expectedN : null,
      subscribersWithMissing: sum('subscribersWithMissing'),
      duplicates: sum('duplicates'),
      outOfOrder: sum('outOfOrder'),
      withoutId: sum('withoutId'),
      replayed: sum('replayed'),
      missingExamples: rs.flatMap((r) => r.missingExamples).slice(0, 10),
      latency: latency.map((h) => h.summary()),
      reconnectToOpen: toOpen.summary(),
      reconnectToFirstTick: toFirst.summary(),
      wireBytes: sum('wireBytes'),
      wireTicks: sum('wireTicks'),
      bytesPerTick: sum('wireTicks') > 0 ? sum('wireBytes') / sum('wireTicks') : null,
    };
  }
  return transports;
}

/** Storm counts of several workers as one: counts summed, histograms merged, the last times the latest. */
function mergeStorm(parts: StormCounts[]): StormFigures {
  const toOpen = new Histogram();
  const toWhole = new Histogram();
  const fromSignal = new Histogram();
  const last = (k: 'lastOpenMs' | 'lastWholeMs'): number | null => parts.reduce<number | null>((a, p) => (p[k] === null ? a : Math.max(a ?? 0, p[k])), null);
  for (const p of parts) {
    toOpen.merge(p.dropToOpen);
    toWhole.merge(p.dropToWhole);
    fromSignal.merge(p.signalToWhole);
  }
  const sum = (k: 'dropped' | 'reestablished' | 'whole' | 'notWhole'): number => parts.reduce((a, p) => a + p[k], 0);
  return {
    dropped: sum('dropped'),
    reestablished: sum('reestablished'),
    whole: sum('whole'),
    notWhole: sum('notWhole'),
    dropToOpen: toOpen.summary(),
    dropToWhole: toWhole.summary(),
    signalToWhole: fromSignal.summary(),
    lastOpenMs: last('lastOpenMs'),
    lastWholeMs: last('lastWholeMs'),
    notWholeExamples: parts.flatMap((p) => p.notWholeExamples).slice(0, 10),
  };
}

export async function runBench(o: BenchOptions, log: (line: string) => void, root = path.resolve(__dirname, '..', '..', '..')): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const total = o.sse + o.socketio + o.ws;
  const host = '127.0.0.1';
  const loadAvgBefore = os.loadavg();
  const services: StartedService[] = [];
  let service: StartedService | null = null;
  let heldPort: HeldPort | undefined;
  let url = o.url;
  // Keys under an explicit prefix belong to this run: none left from an earlier one, none left behind.
  const ownPrefix = !o.url && o.env.REDIS_URL && o.env.REDIS_PREFIX ? { url: o.env.REDIS_URL, prefix: o.env.REDIS_PREFIX } : null;
  let pid: number | null = o.pid ?? null;
  const logFile = path.join(root, 'bench', 'results', `${startedAt.replace(/[:.]/g, '-')}-${o.label}.service.log`);
  let serviceEnv: Record<string, string> = {};
  if (!url) {
    const windowS = o.rampTimeoutS + o.durationS * (o.slow > 0 ? 2 : 1) + o.graceS + 60;
    const env: Record<string, string> = {
      PAIRS: o.pairs.join(','),
      PRICE_SOURCES: 'simulated',
      POLL_INTERVAL_MS: String(o.tickMs),
      // The whole run stays in the window, so that history answers for all of it and no resume fails.
      HISTORY_SIZE: String(Math.max(10_000, Math.ceil(((o.pairs.length * windowS * 1000) / o.tickMs) * 2))),
      MAX_STREAM_CONNECTIONS: String(total + o.slow + 100),
      MAX_STREAM_CONNECTIONS_PER_IP: String(total + o.slow + 100),
      RATE_LIMIT_PER_MINUTE: '1000000',
      LOG_LEVEL: 'warn',
      ...o.env,
    };
    serviceEnv = env;
    if (ownPrefix) log(`redis: deleted ${await deletePrefix(ownPrefix.url, ownPrefix.prefix)} keys ${ownPrefix.prefix}:* before the run`);
    log(`starting the service${o.instances > 1 ? ` ${o.instances} times` : ''}: ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} node ${o.nodeArgs.join(' ')} dist/main.js`);
    if (o.holdPort) {
      heldPort = await holdPort(host, 8);
      log(`--hold-port: a supervisor (pid ${heldPort.pid}) holds 8 listening sockets of port ${heldPort.port} and starts the service on them (LISTEN_FDS)`);
    }
    try {
      for (let i = 0; i < o.instances; i++) {
        services.push(await startService({ root, env, nodeArgs: o.nodeArgs, logFile: i === 0 ? logFile : logFile.replace(/\.service\.log$/, `.service-${i + 1}.log`), host, held: heldPort }));
        if (i > 0) log(`instance ${i + 1}: ${services[i].url} pid ${services[i].pid}`);
      }
    } catch (err) {
      // The run's `finally` is not reached yet: what was started goes here.
      await Promise.all(services.map((s) => s.stop()));
      await heldPort?.close();
      throw err;
    }
    service = services[0];
    url = service.url;
    pid = service.pid;
  }
  const target = new URL(url);
  const baseUrl: string = url;
  const workers: WorkerHandle[] = [];
  const samples: (TreeSample & { phase: number })[] = [];
  let tree = pid ? new TreeSampler(pid) : null;
  /** --storm sigkill/sigterm/rolling: the CPU time of the process the harness killed (its last reading), carried over into the restarted one's. */
  let cpuCarryMs = 0;
  /** --instances: each instance's own process tree (the first is `tree`'s too). */
  const instanceTrees = services.length > 1 ? services.map((s) => new TreeSampler(s.pid)) : [];
  let redisBefore: RedisReading | null = null;
  let redisAfter: RedisReading | null = null;
  const fdLimits = new Map<number, number | null>();
  /** The service's process tree now (and the open-files limit of each process not seen before). */
  const sampleTree = (): TreeSample | null => {
    const t = tree?.sample() ?? null;
    for (const p of t?.processes ?? []) if (!fdLimits.has(p.pid)) fdLimits.set(p.pid, openFilesLimit(p.pid));
    return t && cpuCarryMs ? { ...t, cpuMs: t.cpuMs + cpuCarryMs } : t;
  };
  /** Instance i's process tree now; the first is `tree` (restarted by a storm, its CPU carried over). */
  const sampleInstance = (i: number): TreeSample | null => (i === 0 ? sampleTree() : instanceTrees[i].sample());
  const readings: TreeSample[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    // Wait for a first price of every pair (the simulated source polls at once, then every tick-ms).
    if (o.published === 'history') {
      const deadline = Date.now() + Math.max(10_000, 3 * o.tickMs);
      for (;;) {
        const res = await fetch(`${url}/api/pairs`).catch(() => null);
        const body = res?.ok ? ((await res.json()) as { pairs: { latest: unknown }[] }) : null;
        if (body && body.pairs.every((p) => p.latest !== null)) break;
        if (Date.now() > deadline) throw new Error(`${url}/api/pairs: not every pair has a price after ${Math.max(10_000, 3 * o.tickMs)} ms`);
        await sleep(200);
      }
    }
    // A cluster primary answers once one worker does: let the rest start before the idle reading.
    if (tree) {
      const sampler0 = tree;
      const wanted = /^\d+$/.test(o.env.WORKERS ?? '') ? Number(o.env.WORKERS) : 0;
      const children = (): string => (sampler0.sample()?.processes ?? []).filter((p) => p.slot !== null).map((p) => p.pid).join(',');
      const deadline = Date.now() + 30_000;
      let last = children();
      let stableSince = Date.now();
      while (last !== '' || wanted > 1) {
        if (last.split(',').filter(Boolean).length >= wanted && Date.now() - stableSince >= 1000) break;
        if (Date.now() > deadline) {
          log(`the service's worker processes did not settle in 30 s (${last || 'none'}${wanted > 1 ? `, WORKERS=${wanted}` : ''}): going on`);
          break;
        }
        await sleep(200);
        const now = children();
        if (now !== last) {
          last = now;
          stableSince = Date.now();
        }
      }
    }
    const m0 = machineCpu();
    await sleep(Math.max(1, o.idleS) * 1000);
    const m1 = machineCpu();
    // Other work on the machine (builds, tests) skews every figure: record how busy it was before the load.
    const busyBeforePct = m0 && m1 ? (100 * (m1.busy - m0.busy)) / (m1.total - m0.total) : null;
    const idle = sampleTree();
    if (idle) readings.push(idle);
    const instancesIdle = instanceTrees.map((_, i) => sampleInstance(i));
    const fdLimit = pid ? openFilesLimit(pid) : null;
    const idleChildren = idle?.processes.filter((p) => p.slot !== null) ?? [];
    log(`service ${url}${pid ? ` pid ${pid}, idle RSS ${idle?.rssKb} kB` : ''}${idleChildren.length ? ` over ${idle!.processes.length} processes (workers ${idleChildren.map((p) => `${p.slot}: pid ${p.pid}`).join(', ')})` : ''}`);
    // Open files: each process has its own limit. A service of n workers shares the connections
    // out, so it is each worker's share that must fit under that worker's limit.
    if (idle) {
      const serving = idleChildren.length ? idleChildren : idle.processes.slice(0, 1);
      const limits = serving.map((p) => fdLimits.get(p.pid)).filter((l): l is number => typeof l === 'number');
      const share = Math.ceil((total + o.slow) / serving.length);
      if (limits.length && share + 100 > Math.min(...limits)) {
        log(`warning: ${share} connections per service process (${serving.length} serving) against an open-files limit of ${Math.min(...limits)}: expect EMFILE in the service`);
      }
    }

    // Fork the workers and open the subscribers.
    // With several instances each load-generating worker connects to one of them: a whole number of workers per instance.
    const perInstanceWorkers = Math.ceil(Math.max(Math.min(o.workers, Math.max(1, total + o.slow)), services.length || 1) / (services.length || 1));
    const nWorkers = services.length > 1 ? perInstanceWorkers * services.length : Math.min(o.workers, Math.max(1, total + o.slow));
    /** `n` over the instances evenly, then each instance's share over its workers: one number per worker, instance by instance. */
    const shares = (n: number): number[] => (services.length > 1 ? split(n, services.length).flatMap((x) => split(x, perInstanceWorkers)) : split(n, nWorkers));
    const instanceOf = (w: number): number => (services.length > 1 ? Math.floor(w / perInstanceWorkers) : 0);
    const ownLimit = openFilesLimit('self');
    const perGenerator = Math.ceil((total + o.slow) / nWorkers);
    if (ownLimit !== null && perGenerator + 100 > ownLimit) {
      log(`warning: ${perGenerator} connections per load-generating process against its open-files limit of ${ownLimit}: give more --workers (default one per 4,000)`);
    }
    const addresses = Array.from({ length: o.addresses }, (_, i) => `127.0.0.${i + 1}`);
    const per = Object.fromEntries(TRANSPORTS.map((t) => [t, shares(o[t])])) as Record<Transport, number[]>;
    const slowPer = shares(o.slow);
    let offset = 0;
    const workerJs = path.join(__dirname, 'worker.js');
    for (let w = 0; w < nWorkers; w++) {
      const counts = { sse: per.sse[w], socketio: per.socketio[w], ws: per.ws[w] };
      const plan: WorkerPlan = {
        worker: w,
        host: target.hostname,
        port: services.length > 1 ? Number(new URL(services[instanceOf(w)].url).port) : Number(target.port || 80),
        addresses,
        counts,
        offset,
        pairs: o.pairs,
        pairsPerSubscriber: o.pairsPerSubscriber,
        ssePath: o.ssePath,
        wsPath: o.wsPath,
        socketIoPath: o.socketIoPath,
        socketIoNamespace: o.socketIoNamespace,
        timeField: o.timeField,
        delta: o.delta,
        sioAuth: o.sioAuth,
        concurrency: Math.max(1, Math.ceil(o.concurrency / nWorkers)),
        connectRate: o.connectRate === null ? null : o.connectRate / nWorkers,
        churn: o.churn,
        reconnectDelayMs: o.reconnectDelayMs,
        ignoreHints: o.ignoreHints,
        connectTimeoutMs: o.connectTimeoutMs,
        slow: { transport: o.slowTransport, count: slowPer[w], reads: o.slowReads },
      };
      offset += counts.sse + counts.socketio + counts.ws;
      // --generator-nice: the worker runs under `nice -n N`, which execs node with the IPC channel's fd, so
      // every thread it makes (V8's, libuv's) inherits the lower priority; lowering one's own needs no privilege.
      const niced = o.generatorNice > 0 ? { execPath: 'nice', execArgv: ['-n', String(o.generatorNice), process.execPath, ...process.execArgv] } : {};
      const h = new WorkerHandle(fork(workerJs, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...niced }));
      workers.push(h);
      h.send({ type: 'plan', plan });
    }
    const rampStart = Date.now();
    const tcpRamp0 = tcpCounters();
    const progress = setInterval(() => {
      const opened = workers.reduce((a, w) => a + w.latest.opened, 0);
      const failed = workers.reduce((a, w) => a + w.latest.failed, 0);
      log(`ramp: ${opened} open, ${failed} failed of ${total} (${((Date.now() - rampStart) / 1000).toFixed(0)} s)`);
    }, 5000);
    // Past the ramp timeout the run goes on with what is open; the rest shows as failures or unmeasured.
    const ramped = await Promise.race([Promise.all(workers.map((w) => w.next('connected', 3_600_000))).then(() => true), sleep(o.rampTimeoutS * 1000).then(() => false)]);
    clearInterval(progress);
    const tcpRamp1 = tcpCounters();
    const rampListenOverflows = tcpRamp0 && tcpRamp1 ? tcpRamp1.listenOverflows - tcpRamp0.listenOverflows : null;
    if (!ramped) log(`ramp timeout (${o.rampTimeoutS} s): going on with the subscribers that are open`);
    const opened = workers.reduce((a, w) => a + w.latest.opened, 0);
    const rampSeconds = (Date.now() - rampStart) / 1000;
    log(`ramp done in ${rampSeconds.toFixed(1)} s: ${opened} of ${total} open`);
    await sleep(o.settleS * 1000);
    // The peak: every connection established. Connections per worker, from the service's /metrics.
    const peakConns = await workerConnections(url);
    const peakTree = sampleTree();
    if (peakTree) readings.push(peakTree);
    if (peakConns) log(`peak: ${peakConns.workers.map((w) => `worker ${w.worker} ${w.subscribers}`).join(', ')} connections (/metrics)`);
    const leadersAtPeak = await Promise.all(services.length > 1 ? services.map((s) => leaderOf(s.url)) : []);
    if (leadersAtPeak.length) log(`leader (price_stream_leader): ${leadersAtPeak.map((l, i) => `instance ${i + 1} ${l ?? '?'}`).join(', ')}`);

    // The measured phases.
    let phase = 0;
    if (tree) {
      sampler = setInterval(() => {
        const s = sampleTree();
        if (s) samples.push({ ...s, phase });
      }, 1000);
    }
    const phases: PhaseSummary[] = [];
    // Set by the timer (`as`: the compiler does not follow assignments inside the callback).
    let kill = null as { atMs: number | null; pid: number | null; slot: number | null; error?: string } | null;
    const killWorker = (): void => {
      const now = sampleTree();
      const victim = now?.processes.filter((p) => p.ppid === pid && p.slot !== null).sort((a, b) => a.slot! - b.slot!)[0];
      if (!victim) {
        kill = { atMs: null, pid: null, slot: null, error: `the service (pid ${pid}) has no worker process to kill` };
        log(`--kill-worker-at: ${kill.error}`);
        return;
      }
      const atMs = Date.now();
      try {
        process.kill(victim.pid, 'SIGKILL');
        kill = { atMs, pid: victim.pid, slot: victim.slot };
        log(`killed worker ${victim.slot} of the service (pid ${victim.pid}) with SIGKILL`);
      } catch (err) {
        kill = { atMs: null, pid: victim.pid, slot: victim.slot, error: `kill ${victim.pid}: ${(err as Error).message}` };
        log(`--kill-worker-at: ${kill.error}`);
      }
    };
    // --storm sigkill/sigterm/rolling: the harness is the supervisor. The signal, the wait for the exit, and the same command again on the same port.
    // rolling: the signal goes to instance 1 of several (a rolling deploy's step); a load balancer stops sending to it
    // at once, so its subscribers' next connections go to the other instances (and stay there).
    let storm = null as { atMs: number; pid: number; restartedPid: number | null; exitedAfterMs: number | null; upAfterMs: number | null; failoverTo: number[]; error?: string } | null;
    const stormRestart = async (): Promise<void> => {
      const old = services[0];
      const signal = o.storm === 'sigkill' ? 'SIGKILL' : 'SIGTERM';
      const what = o.storm === 'rolling' ? 'instance 1' : 'the service';
      const before = sampleTree();
      const failoverTo = o.storm === 'rolling' ? services.slice(1).map((_, i) => i + 2) : [];
      if (failoverTo.length) {
        const ports = failoverTo.map((n) => Number(new URL(services[n - 1].url).port));
        workers.forEach((w, i) => instanceOf(i) === 0 && w.send({ type: 'failover', ports }));
      }
      const atMs = Date.now();
      storm = { atMs, pid: old.pid, restartedPid: null, exitedAfterMs: null, upAfterMs: null, failoverTo };
      const exited = new Promise<void>((resolve) => (old.child.exitCode !== null || old.child.signalCode !== null ? resolve() : old.child.once('exit', () => resolve())));
      old.child.kill(signal);
      log(`storm: ${signal} to ${what} (pid ${old.pid})${failoverTo.length ? `; its subscribers reconnect to instance${failoverTo.length > 1 ? 's' : ''} ${failoverTo.join(', ')}` : ''}`);
      // SIGTERM: SHUTDOWN_DELAY_MS, then the shutdown (SHUTDOWN_TIMEOUT_MS, 10 s by default). A second signal would cut the delay short: none is sent.
      const patienceMs = Number(serviceEnv.SHUTDOWN_DELAY_MS ?? 0) + Number(serviceEnv.SHUTDOWN_TIMEOUT_MS ?? 10_000) + 10_000;
      if (!(await Promise.race([exited.then(() => true), sleep(patienceMs).then(() => false)]))) {
        storm.error = `${what} did not exit within ${patienceMs} ms of ${signal}: SIGKILL`;
        log(`storm: ${storm.error}`);
        old.child.kill('SIGKILL');
        await exited;
      }
      storm.exitedAfterMs = Date.now() - atMs;
      if (before) cpuCarryMs = before.cpuMs;
      try {
        const again = await startService({ root, env: serviceEnv, nodeArgs: o.nodeArgs, logFile: old.logFile, host, port: Number(target.port), held: heldPort });
        services[0] = again;
        service = again;
        pid = again.pid;
        tree = new TreeSampler(again.pid);
        storm.restartedPid = again.pid;
        storm.upAfterMs = Date.now() - atMs;
        log(`storm: ${what} exited ${storm.exitedAfterMs} ms after ${signal}; started again (pid ${again.pid}), answering ${storm.upAfterMs} ms after the signal`);
      } catch (err) {
        storm.error = `restart: ${(err as Error).message}`;
        log(`storm: ${storm.error}`);
      }
    };
    let restResults = null as RestRouteResult[] | null;
    const runPhase = async (index: number, name: PhaseSummary['name']): Promise<void> => {
      phase = index;
      const cpu0 = sampleTree();
      const m0 = machineCpu();
      const tcp0 = tcpCounters();
      const startMs = Date.now();
      for (const w of workers) w.send({ type: 'phase', index, startMs });
      log(
        `phase ${name}: ${o.durationS} s${o.churn ? ' with churn' : ''}${index === 0 && o.killWorkerAtS !== null ? `, a worker of the service killed at ${o.killWorkerAtS} s` : ''}` +
          `${index === 0 && o.storm && o.storm !== 'worker' ? `, storm: ${o.storm} at ${o.stormAtS} s and a restart` : ''}${index === 0 && o.rest ? `, REST: ${o.rest.routes.length} routes with wrk` : ''}`,
      );
      const killTimer = index === 0 && o.killWorkerAtS !== null ? setTimeout(killWorker, o.killWorkerAtS * 1000) : undefined;
      // The phase lasts --duration, and at least until the restart is done and every REST route was driven.
      const waits: Promise<unknown>[] = [sleep(o.durationS * 1000)];
      if (index === 0 && o.stormAtS !== null && o.storm !== null && RESTARTING_STORMS.includes(o.storm)) waits.push(sleep(o.stormAtS * 1000).then(stormRestart));
      if (index === 0 && o.rest) waits.push(runRest(baseUrl, o.rest, log).then((r) => (restResults = r)));
      await Promise.all(waits);
      clearTimeout(killTimer);
      const endMs = Date.now();
      const cpu1 = sampleTree();
      const m1 = machineCpu();
      const tcp1 = tcpCounters();
      const inPhase = samples.filter((s) => s.phase === index);
      if (cpu0) readings.push(cpu0);
      if (cpu1) readings.push(cpu1);
      // A process caught exiting (a storm's restart) has no VmRSS: NaN, left out.
      const rss = rssOf(inPhase);
      phases.push({
        name,
        startMs,
        endMs,
        serviceCpuPct: cpu0 && cpu1 ? (100 * (cpu1.cpuMs - cpu0.cpuMs)) / (cpu1.atMs - cpu0.atMs) : null,
        serviceRssKb: cpu1?.rssKb ?? null,
        serviceRssMaxKb: rss ? Math.max(...rss) : null,
        serviceRssMinKb: rss ? Math.min(...rss) : null,
        machineBusyPct: m0 && m1 ? (100 * (m1.busy - m0.busy)) / (m1.total - m0.total) : null,
        listenOverflows: tcp0 && tcp1 ? tcp1.listenOverflows - tcp0.listenOverflows : null,
        tcpKernelMemKb: tcpKernelMemKb(),
        processes: cpu0 && cpu1 ? phaseProcesses([cpu0, ...inPhase, cpu1]) : [],
      });
    };
    if (o.redisStats && o.env.REDIS_URL) redisBefore = await readRedis(o.env.REDIS_URL, services.map((s) => s.pid));
    if (redisBefore) log(`redis: pid ${redisBefore.pid ?? '?'}, ${redisBefore.connectedClients ?? '?'} clients connected at the start of the window (other clients' commands count in the deltas)`);
    const instancesLoad0 = instanceTrees.map((_, i) => sampleInstance(i));
    await runPhase(0, 'load');
    const instancesLoad1 = instanceTrees.map((_, i) => sampleInstance(i));
    if (o.slow > 0) {
      for (const w of workers) w.send({ type: 'open-slow' });
      await Promise.all(workers.map((w) => w.next('slow-opened', 60_000)));
      await runPhase(1, 'slow');
    }
    if (redisBefore && o.env.REDIS_URL) redisAfter = await readRedis(o.env.REDIS_URL, services.map((s) => s.pid));
    const loadAvgEnd = os.loadavg();
    const leadersAtEnd = await Promise.all(services.length > 1 ? services.map((s) => leaderOf(s.url)) : []);
    const streamsAtEnd = await Promise.all(services.length > 1 ? services.map((s) => streamsOn(s.url)) : []);
    const fromMs = phases[0].startMs;
    const toMs = phases[phases.length - 1].endMs;
    for (const w of workers) w.send({ type: 'stop', endMs: toMs });
    // The end: the connections are still open (the grace lets resumes finish).
    const endConns = await workerConnections(url);
    const endTree = sampleTree();
    if (endTree) readings.push(endTree);
    log(`grace ${o.graceS} s for ticks in flight and resumes`);
    await sleep(o.graceS * 1000);
    clearInterval(sampler);

    // What was published in the window, then each worker's findings against it.
    let expected: Record<string, string[]> | null = null;
    let complete = true;
    let historyError: string | undefined;
    const diedDuringRun =
      services
        .map((s, i) => (s.child.exitCode !== null ? `code ${s.child.exitCode}` : s.child.signalCode ? `signal ${s.child.signalCode}` : '') + (services.length > 1 && (s.child.exitCode !== null || s.child.signalCode) ? ` (instance ${i + 1})` : ''))
        .filter(Boolean)
        .join(', ') || undefined;
    if (o.published === 'history') {
      try {
        const h = await publishedFromHistory(url, o.pairs, o.timeField, fromMs, toMs);
        expected = h.ids;
        complete = h.complete;
      } catch (err) {
        historyError = err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
        log(`cannot read what was published: ${historyError}`);
      }
    } else if (o.published === 'union') {
      for (const w of workers) w.send({ type: 'window-ids', fromMs, toMs });
      const sets = new Map<string, Set<string>>();
      for (const w of workers) {
        for (const [id, pair] of (await w.next('ids', 60_000)).ticks) {
          if (!sets.has(pair)) sets.set(pair, new Set());
          sets.get(pair)!.add(id);
        }
      }
      expected = Object.fromEntries([...sets].map(([pair, s]) => [pair, [...s]]));
    }
    // Read through the closure's assignment (the compiler narrows `storm` to null here otherwise).
    const stormDone = storm as typeof storm;
    const killAtMs = kill?.atMs ?? stormDone?.atMs ?? null;
    for (const w of workers) w.send({ type: 'evaluate', expected, killAtMs });
    const results = await Promise.all(workers.map(async (w) => (await w.next('result', 120_000)).result));

    // Merge.
    const transports = mergeTransports(results, phases.length, expected !== null);
    const slow = results.reduce(
      (a, r) => ({
        ...a,
        target: a.target + r.slow.target,
        opened: a.opened + r.slow.opened,
        failures: mergeCounts(a.failures, r.slow.failures),
        cutByServer: a.cutByServer + r.slow.cutByServer,
        bytesRead: a.bytesRead + r.slow.bytesRead,
      }),
      { transport: o.slowTransport, target: 0, opened: 0, failures: {} as Counts, cutByServer: 0, bytesRead: 0 },
    );
    const measuredMs = toMs - fromMs;
    const held = TRANSPORTS.reduce((a, t) => a + transports[t].heldAtStart, 0);
    const loaded = phases[0].serviceRssKb;
    const seen = seenProcesses([...readings, ...samples], fdLimits);
    const serviceWorkerFigures = serviceWorkers({ rootPid: pid, peak: peakConns, end: endConns, peakTree, endTree, loadPhase: phases[0].processes, seen });
    let killSummary: KillSummary | null = null;
    if (o.killWorkerAtS !== null) {
      const toOpen = new Histogram();
      for (const r of results) if (r.kill) toOpen.merge(r.kill.dropToOpen);
      const killed = kill;
      const replacement = killed?.atMs != null ? seen.filter((p) => p.slot === killed.slot && p.pid !== killed.pid && p.firstSeenMs >= killed.atMs!).sort((a, b) => a.firstSeenMs - b.firstSeenMs)[0] : undefined;
      killSummary = {
        atS: o.killWorkerAtS,
        atMs: killed?.atMs ?? null,
        pid: killed?.pid ?? null,
        slot: killed?.slot ?? null,
        heldAtPeak: peakConns?.workers.find((w) => killed?.slot != null && w.worker === String(killed.slot))?.subscribers ?? null,
        replacementPid: replacement?.pid ?? null,
        dropped: results.reduce((a, r) => a + (r.kill?.dropped ?? 0), 0),
        reestablished: results.reduce((a, r) => a + (r.kill?.reestablished ?? 0), 0),
        dropToOpen: toOpen.summary(),
        ...(killed === null ? { error: 'the kill did not happen' } : killed.error ? { error: killed.error } : {}),
      };
    }
    let stormSummary: StormSummary | null = null;
    if (o.storm && o.stormAtS !== null) {
      const parts = results.flatMap((r) => (r.kill ? [r.kill] : []));
      const byWorker = o.storm === 'worker';
      stormSummary = {
        trigger: o.storm,
        atS: o.stormAtS,
        atMs: killAtMs,
        signal: o.storm === 'sigterm' || o.storm === 'rolling' ? 'SIGTERM' : 'SIGKILL',
        instance: o.storm === 'rolling' ? 1 : null,
        failoverTo: stormDone?.failoverTo ?? [],
        pid: byWorker ? (killSummary?.pid ?? null) : (stormDone?.pid ?? null),
        restartedPid: byWorker ? (killSummary?.replacementPid ?? null) : (stormDone?.restartedPid ?? null),
        exitedAfterMs: byWorker ? null : (stormDone?.exitedAfterMs ?? null),
        upAfterMs: byWorker ? null : (stormDone?.upAfterMs ?? null),
        all: mergeStorm(parts),
        byTransport: Object.fromEntries(TRANSPORTS.map((t) => [t, mergeStorm(parts.map((p) => p.byTransport[t]))])) as Record<Transport, StormFigures>,
        ...(byWorker ? (killSummary?.error ? { error: killSummary.error } : {}) : stormDone === null ? { error: 'the storm did not happen' } : stormDone.error ? { error: stormDone.error } : {}),
      };
    }
    for (const w of workers) w.send({ type: 'close' });
    await Promise.all(workers.map((w) => Promise.race([w.exited, sleep(5000)])));
    const exitCodes = await Promise.all(services.map((s) => s.stop()));
    const exitCode = service ? exitCodes[0] : null;
    const instances: InstanceSummary[] | null =
      services.length > 1
        ? services.map((s, i) => {
            const c0 = instancesLoad0[i];
            const c1 = instancesLoad1[i];
            return {
              instance: i + 1,
              url: s.url,
              pid: s.pid,
              logFile: s.logFile,
              leaderAtPeak: leadersAtPeak[i] ?? null,
              leaderAtEnd: leadersAtEnd[i] ?? null,
              streamsAtEnd: streamsAtEnd[i] ?? null,
              terminated: o.storm === 'rolling' && i === 0 && stormDone && o.stormAtS !== null ? { atS: o.stormAtS, pid: stormDone.pid, restartedPid: stormDone.restartedPid } : null,
              generators: results.map((_, w) => w).filter((w) => instanceOf(w) === i),
              transports: mergeTransports(results.filter((_, w) => instanceOf(w) === i), phases.length, expected !== null),
              idleRssKb: instancesIdle[i]?.rssKb ?? null,
              cpuPct: c0 && c1 && c1.atMs > c0.atMs ? (100 * (c1.cpuMs - c0.cpuMs)) / (c1.atMs - c0.atMs) : null,
              rssKb: c1?.rssKb ?? null,
              exitCode: exitCodes[i],
            };
          })
        : null;
    const publishedTicks = expected ? Object.values(expected).reduce((a, l) => a + l.length, 0) : 0;
    const redis = redisBefore && redisAfter && o.env.REDIS_URL ? redisStats(o.env.REDIS_URL, redisBefore, redisAfter, publishedTicks) : null;

    const failures: string[] = [];
    for (const t of TRANSPORTS) {
      const s = transports[t];
      if (s.target === 0) continue;
      if (s.heldAtStart < s.target) failures.push(`${t}: ${s.heldAtStart} of ${s.target} subscribers connected (${JSON.stringify(s.connectFailures)})`);
      if (expected && s.heldAtStart > 0 && s.expected === 0) failures.push(`${t}: no tick was published in the window`);
      if (s.missing > 0) failures.push(`${t}: ${s.missing} ticks missing over ${s.subscribersWithMissing} subscribers, e.g. ${s.missingExamples.join('; ')}`);
      if (s.duplicates > 0) failures.push(`${t}: ${s.duplicates} duplicates`);
      if (s.outOfOrder > 0) failures.push(`${t}: ${s.outOfOrder} out of order`);
      if (s.resets > 0) failures.push(`${t}: ${s.resets} reset events (resume failed)`);
    }
    if (diedDuringRun) failures.push(`the service exited during the run (${diedDuringRun}); see ${logFile}`);
    for (const inst of instances ?? []) {
      const sub = TRANSPORTS.reduce((a, t) => a + inst.transports[t].target, 0);
      if (sub > 0 && inst.transports.sse.heldAtStart + inst.transports.socketio.heldAtStart + inst.transports.ws.heldAtStart === 0) failures.push(`instance ${inst.instance}: none of its ${sub} subscribers connected`);
    }
    if (instances && instances.filter((i) => i.leaderAtEnd === 1).length !== 1) failures.push(`leaders at the end: ${instances.filter((i) => i.leaderAtEnd === 1).length} (price_stream_leader), not exactly one`);
    if (historyError) failures.push(`what was published is unknown: ${historyError}`);
    if (expected && !complete) failures.push('the history window did not cover the run: delivery was checked against part of it');
    // Open files per process: each worker of the service against its own limit.
    for (const p of seen) {
      if (p.maxFds !== null && p.fdLimit !== null && p.maxFds >= p.fdLimit) failures.push(`service pid ${p.pid}${p.slot !== null ? ` (worker ${p.slot})` : ''} reached its open-files limit: ${p.maxFds} fds of ${p.fdLimit}`);
    }
    if (stormSummary) {
      const a = stormSummary.all;
      // rolling: the streams of instance 1 (its load-generating workers' subscribers).
      const heldAll = TRANSPORTS.reduce((n, t) => n + (stormSummary!.instance !== null && instances ? instances[stormSummary!.instance - 1].transports[t] : transports[t]).heldAtStart, 0);
      if (stormSummary.error) failures.push(`--storm ${stormSummary.trigger}: ${stormSummary.error}`);
      if (a.dropped === 0) failures.push(`--storm ${stormSummary.trigger}: no stream ended`);
      // SIGKILL or SIGTERM of the one process ends every stream (of instance 1's, with rolling); a worker's kill, its share.
      if (stormSummary.trigger !== 'worker' && a.dropped < heldAll) failures.push(`--storm ${stormSummary.trigger}: ${a.dropped} of ${heldAll} streams ended`);
      if (a.reestablished < a.dropped) failures.push(`--storm ${stormSummary.trigger}: ${a.dropped - a.reestablished} of ${a.dropped} dropped subscribers were not established again`);
      if (expected && a.whole < a.dropped) failures.push(`--storm ${stormSummary.trigger}: ${a.dropped - a.whole} of ${a.dropped} dropped subscribers not whole, e.g. ${a.notWholeExamples.join('; ')}`);
    }
    for (const r of restResults ?? []) {
      if (r.error) failures.push(`--rest ${r.route}: ${r.error}`);
      else if (r.requests === 0) failures.push(`--rest ${r.route}: no request completed`);
      if (r.non2xx > 0) failures.push(`--rest ${r.route}: ${r.non2xx} responses not 2xx or 3xx`);
      // A wrk timeout (no response within 2 s) is slowness, reported in the table; connect, read and write errors are failures.
      const { connect, read, write } = r.socketErrors;
      if (connect + read + write > 0) failures.push(`--rest ${r.route}: socket errors ${JSON.stringify(r.socketErrors)}`);
    }
    if (killSummary?.error) failures.push(`--kill-worker-at: ${killSummary.error}`);
    else if (killSummary && killSummary.reestablished < killSummary.dropped) failures.push(`--kill-worker-at: ${killSummary.dropped - killSummary.reestablished} of ${killSummary.dropped} dropped subscribers were not established again`);

    return {
      label: o.label,
      startedAt,
      machine: {
        nproc: os.availableParallelism(),
        memGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        cpu: os.cpus()[0]?.model ?? 'unknown',
        fdLimit: openFilesLimit('self'),
        busyBeforePct,
        loadAvgBefore,
        loadAvgEnd,
      },
      options: o,
      target: { url, pid, started: service !== null, logFile: service ? logFile : null },
      instances,
      redis,
      published: { mode: o.published, ticks: publishedTicks,
        scheduled: Math.floor(measuredMs / o.tickMs) * o.pairs.length,
        complete, windowMs: [fromMs, toMs], error: historyError },
      transports,
      phases,
      service: {
        idleRssKb: idle?.rssKb ?? null,
        loadedRssKb: loaded,
        // rolling: the first instance's loaded figure is the restarted process's, which holds none of the subscribers.
        rssPerConnectionBytes: idle && loaded !== null && held > 0 && o.storm !== 'rolling' ? ((loaded - idle.rssKb) * 1024) / held : null,
        rssPerConnectionMinBytes: idle && phases[0].serviceRssMinKb !== null && held > 0 && o.storm !== 'rolling' ? ((phases[0].serviceRssMinKb - idle.rssKb) * 1024) / held : null,
        maxFds: samples.length ? Math.max(...samples.map((s) => s.fds ?? 0)) : null,
        fdLimit,
        exitCode,
        processes: seen,
        samples,
      },
      workers: serviceWorkerFigures,
      kill: killSummary,
      storm: stormSummary,
      rest: restResults,
      ramp: { seconds: rampSeconds, listenOverflows: rampListenOverflows },
      generator: {
        workers: nWorkers,
        nice: o.generatorNice,
        cpuPct: (100 * results.reduce((a, r) => a + r.cpuUserMs + r.cpuSystemMs, 0)) / measuredMs,
        loopDelayP99MaxMs: Math.max(...results.map((r) => r.loopDelayP99Ms)),
        loopDelayMaxMs: Math.max(...results.map((r) => r.loopDelayMaxMs)),
      },
      slow,
      assert: { passed: failures.length === 0, failures },
    };
  } finally {
    clearInterval(sampler);
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(services.map((s) => (s.child.exitCode === null ? s.stop() : null)));
    await heldPort?.close();
    if (ownPrefix) {
      await deletePrefix(ownPrefix.url, ownPrefix.prefix).then(
        (n) => log(`redis: deleted ${n} keys ${ownPrefix.prefix}:* after the run`),
        (err: unknown) => log(`redis: could not delete ${ownPrefix.prefix}:*: ${(err as Error).message}`),
      );
    }
    // A worker of the service that outlived its primary (say, the primary needed SIGKILL) would hold the port.
    if (service && tree) {
      for (let i = 0; i < 20 && tree.survivors().length > 0; i++) await sleep(100);
      for (const p of tree.survivors()) {
        log(`service process ${p} still runs after the service stopped: SIGKILL`);
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  }
}

/** The samples' RSS figures that are numbers, or null when none is. */
function rssOf(samples: { rssKb: number }[]): number[] | null {
  const kb = samples.map((s) => s.rssKb).filter(Number.isFinite);
  return kb.length > 0 ? kb : null;
}
