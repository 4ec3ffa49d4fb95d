/**
 * A load-generating worker (child_process.fork): holds its share of the subscribers, records
 * what each receives, and on request checks it against what the service published.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openSlow, openSocketIo, openSse, openWsFeed, type Conn, type Endpoint, type SlowConn, type StreamHandlers } from './clients';
import { TRANSPORTS, type FromWorker, type KillResult, type StormCounts, type ToWorker, type Transport, type TransportResult, type WorkerPlan, type WorkerResult } from './protocol';
import { addCount, compareKeys, Histogram, idKey, type Counts } from './stats';

const send = (m: FromWorker): void => {
  process.send!(m);
};

/** Every id this worker has seen, interned: subscribers store small integers, not strings. */
const idIndex = new Map<string, number>();
const idInfo: { id: string; pair: string; timeMs: number }[] = [];

function intern(id: string, pair: string | undefined, timeMs: number): number {
  let i = idIndex.get(id);
  if (i === undefined) {
    i = idInfo.length;
    idIndex.set(id, i);
    idInfo.push({ id, pair: pair ?? '', timeMs });
  }
  return i;
}

type TransportStats = {
  latency: Histogram[];
  reconnectToOpen: Histogram;
  reconnectToFirstTick: Histogram;
  connectFailures: Counts;
  drops: Counts;
  reconnectFailures: Counts;
  cuts: number;
  reconnects: number;
  /** Reconnects served by another worker than the connection before (SSE, which names it). */
  movedWorker: number;
  resets: number;
  replayed: number;
  withoutId: number;
  /** Socket bytes received and ticks received while the window is open (from the load phase to the stop). */
  wireBytes: number;
  wireTicks: number;
};

const newStats = (): TransportStats => ({
  latency: [],
  reconnectToOpen: new Histogram(),
  reconnectToFirstTick: new Histogram(),
  connectFailures: {},
  drops: {},
  reconnectFailures: {},
  cuts: 0,
  reconnects: 0,
  movedWorker: 0,
  resets: 0,
  replayed: 0,
  withoutId: 0,
  wireBytes: 0,
  wireTicks: 0,
});

let plan: WorkerPlan;
const stats: Record<Transport, TransportStats> = { sse: newStats(), socketio: newStats(), ws: newStats() };
const phaseStarts: number[] = [];
let endMs = Infinity;
let closing = false;
let churning = false;
/** Between the load phase's start and the stop: bytes and ticks on the wire count. */
let windowOpen = false;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
let cpuAtStart = process.cpuUsage();
let cpuMeasured: NodeJS.CpuUsage = { user: 0, system: 0 };

class Subscriber {
  conn: Conn | undefined;
  state: 'connecting' | 'open' | 'failed' | 'closed' = 'connecting';
  /** Whether it was established when the measurement began: only those are checked for delivery. */
  measured = false;
  lastId: string | undefined;
  lastKey: [number, number] | null = null;
  readonly received: number[] = [];
  /** When each of `received` arrived. */
  readonly arrivals: number[] = [];
  duplicates = 0;
  outOfOrder = 0;
  /** When its established stream ended without the harness cutting it, and when a stream was established again after a drop or cut. */
  readonly dropTimes: number[] = [];
  readonly reopenTimes: number[] = [];
  private attemptStart = 0;
  private reconnecting = false;
  /** The X-Served-By of its last stream (SSE). */
  private servedBy: string | undefined;
  private awaitingFirstTick = false;
  private churnTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly s: TransportStats;

  constructor(
    readonly transport: Transport,
    /** Where it connects: its instance, until a failover (--storm rolling) points it at another. */
    private ep: Endpoint,
    readonly pairs: string[],
    /** Its index over all workers' subscribers. */
    readonly globalIndex: number,
  ) {
    this.s = stats[transport];
  }

  /** The first connection: resolves true once established, false if it failed. */
  start(): Promise<boolean> {
    return new Promise((resolve) => this.connect(resolve));
  }

  private connect(first?: (ok: boolean) => void): void {
    this.state = 'connecting';
    this.attemptStart = Date.now();
    let opened = false;
    let hintMs: number | undefined;
    // A connection the server never answers (say, its accept() failed with EMFILE) fails here.
    const timeout = setTimeout(() => {
      this.conn?.close();
      h.close('timeout');
    }, plan.connectTimeoutMs);
    const h: StreamHandlers = {
      open: (servedBy) => {
        clearTimeout(timeout);
        opened = true;
        this.state = 'open';
        const now = Date.now();
        if (this.reconnecting) {
          this.s.reconnects++;
          if (servedBy !== undefined && this.servedBy !== undefined && servedBy !== this.servedBy) this.s.movedWorker++;
          this.s.reconnectToOpen.add(now - this.attemptStart);
          this.awaitingFirstTick = true;
          this.reopenTimes.push(now);
        }
        this.servedBy = servedBy;
        first?.(true);
        this.scheduleCut();
      },
      tick: (id, pair, timeMs, arrived) => this.onTick(id, pair, timeMs, arrived),
      reset: () => this.s.resets++,
      hint: (ms) => (hintMs = ms),
      bytes: (n) => {
        if (windowOpen) this.s.wireBytes += n;
      },
      close: (reason) => {
        clearTimeout(timeout);
        this.conn = undefined;
        clearTimeout(this.churnTimer);
        if (closing) return;
        if (!opened && first) {
          this.state = 'failed';
          addCount(this.s.connectFailures, reason);
          return first(false);
        }
        if (opened) {
          addCount(this.s.drops, reason);
          this.dropTimes.push(Date.now());
        } else addCount(this.s.reconnectFailures, reason);
        this.reconnecting = true;
        this.state = 'connecting';
        // The server's hint for this stream (it ended it on shutdown) replaces the first delay, unless --ignore-hints.
        const delay = hintMs !== undefined && !plan.ignoreHints ? hintMs : plan.reconnectDelayMs * (0.5 + Math.random());
        this.retryTimer = setTimeout(() => this.connect(), delay);
      },
    };
    const req = { path: '', pairs: this.pairs, lastEventId: this.lastId, timeField: plan.timeField, delta: plan.delta };
    const q = `pairs=${encodeURIComponent(this.pairs.join(','))}${plan.delta ? '&delta=1' : ''}`;
    if (this.transport === 'sse') this.conn = openSse(this.ep, { ...req, path: `${plan.ssePath}?${q}` }, h);
    else if (this.transport === 'ws') this.conn = openWsFeed(this.ep, { ...req, path: `${plan.wsPath}?${q}` }, h);
    else this.conn = openSocketIo(this.ep, { ...req, path: plan.socketIoPath, namespace: plan.socketIoNamespace, inHandshake: plan.sioAuth }, h);
  }

  private onTick(id: string | undefined, pair: string | undefined, timeMs: number, arrived: number): void {
    if (windowOpen) this.s.wireTicks++;
    if (this.awaitingFirstTick) {
      this.awaitingFirstTick = false;
      this.s.reconnectToFirstTick.add(arrived - this.attemptStart);
    }
    const live = timeMs >= this.attemptStart;
    if (!live && this.reconnecting) this.s.replayed++;
    if (live && timeMs <= endMs) {
      let phase = phaseStarts.length - 1;
      while (phase >= 0 && timeMs < phaseStarts[phase]) phase--;
      if (phase >= 0) (this.s.latency[phase] ??= new Histogram()).add(arrived - timeMs);
    }
    if (id === undefined) {
      this.s.withoutId++;
      return;
    }
    const idx = intern(id, pair, timeMs);
    const key = idKey(id);
    if (key !== null && this.lastKey !== null && compareKeys(key, this.lastKey) <= 0) {
      if (this.received.includes(idx)) this.duplicates++;
      else this.outOfOrder++;
    } else {
      this.lastKey = key;
      this.lastId = id;
    }
    this.received.push(idx);
    this.arrivals.push(arrived);
  }

  scheduleCut(): void {
    clearTimeout(this.churnTimer);
    if (!churning || !plan.churn || this.state !== 'open') return;
    const { minMs, maxMs } = plan.churn;
    this.churnTimer = setTimeout(() => this.cut(), minMs + Math.random() * (maxMs - minMs));
  }

  /** Cuts the connection as a network failure would, and reconnects at once with the last id. */
  private cut(): void {
    if (!churning || this.state !== 'open' || !this.conn) return;
    this.conn.close();
    this.conn = undefined;
    this.s.cuts++;
    this.reconnecting = true;
    this.connect();
  }

  /** Its next connection goes to `port` (the stream open now, if any, stays where it is until it ends). */
  moveTo(port: number): void {
    this.ep = { ...this.ep, port };
  }

  stopChurn(): void {
    clearTimeout(this.churnTimer);
  }

  close(): void {
    clearTimeout(this.churnTimer);
    clearTimeout(this.retryTimer);
    this.conn?.close();
    this.state = 'closed';
  }
}

const subscribers: Subscriber[] = [];
const slowConns: SlowConn[] = [];

function endpoint(globalIndex: number): Endpoint {
  return { host: plan.host, port: plan.port, localAddress: plan.addresses[globalIndex % plan.addresses.length] };
}

function pairsFor(globalIndex: number): string[] {
  const n = Math.min(plan.pairsPerSubscriber, plan.pairs.length);
  if (n === plan.pairs.length) return plan.pairs;
  return Array.from({ length: n }, (_, k) => plan.pairs[(globalIndex + k) % plan.pairs.length]);
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

/** Starts `task` for each item at `perSecond`, on a schedule from the first start (not waiting for earlier ones). */
async function paced<T>(items: T[], perSecond: number, task: (item: T) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  const running: Promise<void>[] = [];
  for (let i = 0; i < items.length; i++) {
    const due = t0 + (i * 1000) / perSecond - performance.now();
    if (due > 1) await new Promise((r) => setTimeout(r, due));
    running.push(task(items[i]));
  }
  await Promise.all(running);
}

async function openAll(): Promise<void> {
  let g = plan.offset;
  for (const t of TRANSPORTS) {
    for (let i = 0; i < plan.counts[t]; i++, g++) subscribers.push(new Subscriber(t, endpoint(g), pairsFor(g), g));
  }
  let opened = 0;
  let failed = 0;
  const progress = setInterval(() => send({ type: 'progress', opened, failed }), 1000);
  const open = async (s: Subscriber) => {
    if (await s.start()) opened++;
    else failed++;
  };
  if (plan.connectRate === null) await pool(subscribers, plan.concurrency, open);
  else await paced(subscribers, plan.connectRate, open);
  clearInterval(progress);
  send({ type: 'connected', opened, failed });
}

async function openSlowAll(): Promise<void> {
  const g0 = plan.offset;
  const req = { path: '', pairs: plan.pairs, timeField: plan.timeField, namespace: plan.socketIoNamespace };
  const q = `pairs=${encodeURIComponent(plan.pairs.join(','))}`;
  const path = plan.slow.transport === 'sse' ? `${plan.ssePath}?${q}` : plan.slow.transport === 'ws' ? `${plan.wsPath}?${q}` : plan.socketIoPath;
  for (let i = 0; i < plan.slow.count; i++) slowConns.push(openSlow(endpoint(g0 + i), plan.slow.transport, { ...req, path }, plan.slow.reads));
  // Let the requests go out and the failures (if any) come back.
  await new Promise((r) => setTimeout(r, 1000));
  const failed = slowConns.filter((c) => c.failed !== undefined).length;
  send({ type: 'slow-opened', opened: slowConns.length - failed, failed });
}

function transportResult(t: Transport, expected: Map<string, Set<number>> | null, expectedUnseen: Map<string, number>): TransportResult {
  const s = stats[t];
  const subs = subscribers.filter((x) => x.transport === t);
  const r: TransportResult = {
    target: plan.counts[t],
    heldAtStart: subs.filter((x) => x.measured).length,
    heldAtEnd: subs.filter((x) => x.state === 'open').length,
    connectFailures: s.connectFailures,
    drops: s.drops,
    reconnectFailures: s.reconnectFailures,
    cuts: s.cuts,
    reconnects: s.reconnects,
    movedWorker: s.movedWorker,
    resets: s.resets,
    expected: 0,
    delivered: 0,
    missing: 0,
    subscribersWithMissing: 0,
    duplicates: 0,
    outOfOrder: 0,
    withoutId: s.withoutId,
    replayed: s.replayed,
    missingExamples: [],
    latency: s.latency.map((h) => h.toJSON()),
    reconnectToOpen: s.reconnectToOpen.toJSON(),
    reconnectToFirstTick: s.reconnectToFirstTick.toJSON(),
    wireBytes: s.wireBytes,
    wireTicks: s.wireTicks,
  };
  for (const sub of subs) {
    if (!sub.measured) continue;
    r.duplicates += sub.duplicates;
    r.outOfOrder += sub.outOfOrder;
    if (!expected) continue;
    const got = new Set(sub.received);
    let want = 0;
    let hit = 0;
    for (const pair of sub.pairs) {
      const ids = expected.get(pair);
      if (!ids) continue;
      want += ids.size + (expectedUnseen.get(pair) ?? 0);
      for (const idx of ids) {
        if (got.has(idx)) hit++;
        else if (r.missingExamples.length < 5) r.missingExamples.push(`${t}#${subscribers.indexOf(sub)} ${pair} ${idInfo[idx].id}`);
      }
    }
    r.expected += want;
    r.delivered += hit;
    r.missing += want - hit;
    if (want > hit) r.subscribersWithMissing++;
  }
  return r;
}

/** The published ticks of each pair (interned where a subscriber here got them) with their id time: what a resumed subscriber must have. */
type Published = Map<string, { idx: number | undefined; ms: number }[]>;

/**
 * Each subscriber whose stream dropped at or after `killAtMs` (its first such drop), whether it
 * was established again after it, and whether it is whole: every published tick of its pairs up
 * to its re-establishment that it lacked at the drop has arrived, and it got none twice.
 */
function stormCounts(subs: Subscriber[], killAtMs: number, published: Published | null): StormCounts {
  const r: StormCounts = { dropped: 0, reestablished: 0, dropToOpen: [], whole: 0, notWhole: 0, dropToWhole: [], signalToWhole: [], lastOpenMs: null, lastWholeMs: null, notWholeExamples: [] };
  const toOpen = new Histogram();
  const toWhole = new Histogram();
  const fromSignal = new Histogram();
  const notWhole = (sub: Subscriber, why: string): void => {
    r.notWhole++;
    if (r.notWholeExamples.length < 5) r.notWholeExamples.push(`${sub.transport}#${subscribers.indexOf(sub)} ${why}`);
  };
  for (const sub of subs) {
    const drop = sub.dropTimes.find((t) => t >= killAtMs);
    if (drop === undefined) continue;
    r.dropped++;
    const reopen = sub.reopenTimes.find((t) => t >= drop);
    if (reopen === undefined) {
      if (published) notWhole(sub, 'not established again');
      continue;
    }
    r.reestablished++;
    toOpen.add(reopen - drop);
    r.lastOpenMs = Math.max(r.lastOpenMs ?? 0, reopen - killAtMs);
    if (!published) continue;
    if (sub.duplicates > 0) {
      notWhole(sub, `${sub.duplicates} duplicates`);
      continue;
    }
    const arrivedAt = new Map<number, number>();
    sub.received.forEach((idx, i) => {
      if (!arrivedAt.has(idx)) arrivedAt.set(idx, sub.arrivals[i]);
    });
    let wholeAt = reopen;
    let lacking: string | undefined;
    for (const pair of sub.pairs) {
      for (const t of published.get(pair) ?? []) {
        if (t.ms > reopen) continue;
        const at = t.idx === undefined ? undefined : arrivedAt.get(t.idx);
        if (at === undefined) {
          lacking ??= `${pair} ${t.idx === undefined ? `a tick at ${t.ms}` : idInfo[t.idx].id} never arrived`;
          continue;
        }
        if (at > drop && at > wholeAt) wholeAt = at;
      }
    }
    if (lacking) {
      notWhole(sub, lacking);
      continue;
    }
    r.whole++;
    toWhole.add(wholeAt - drop);
    fromSignal.add(wholeAt - killAtMs);
    r.lastWholeMs = Math.max(r.lastWholeMs ?? 0, wholeAt - killAtMs);
  }
  r.dropToOpen = toOpen.toJSON();
  r.dropToWhole = toWhole.toJSON();
  r.signalToWhole = fromSignal.toJSON();
  return r;
}

function killResult(killAtMs: number, published: Published | null): KillResult {
  const byTransport = Object.fromEntries(TRANSPORTS.map((t) => [t, stormCounts(subscribers.filter((x) => x.transport === t), killAtMs, published)])) as Record<Transport, StormCounts>;
  return { ...stormCounts(subscribers, killAtMs, published), byTransport };
}

function evaluate(expectedIds: Record<string, string[]> | null, killAtMs: number | null): WorkerResult {
  // Expected ids nobody here received are missing for every subscriber of their pair.
  let expected: Map<string, Set<number>> | null = null;
  const unseen = new Map<string, number>();
  let published: Published | null = null;
  if (expectedIds) {
    expected = new Map();
    published = new Map();
    for (const [pair, ids] of Object.entries(expectedIds)) {
      const set = new Set<number>();
      const list: { idx: number | undefined; ms: number }[] = [];
      for (const id of ids) {
        const idx = idIndex.get(id);
        if (idx === undefined) unseen.set(pair, (unseen.get(pair) ?? 0) + 1);
        else set.add(idx);
        list.push({ idx, ms: idKey(id)?.[0] ?? 0 });
      }
      expected.set(pair, set);
      published.set(pair, list);
    }
  }
  const result: WorkerResult = {
    transports: {
      sse: transportResult('sse', expected, unseen),
      socketio: transportResult('socketio', expected, unseen),
      ws: transportResult('ws', expected, unseen),
    },
    kill: killAtMs === null ? null : killResult(killAtMs, published),
    slow: { target: plan.slow.count, opened: slowConns.filter((c) => c.failed === undefined).length, failures: {}, cutByServer: 0, bytesRead: 0 },
    cpuUserMs: cpuMeasured.user / 1000,
    cpuSystemMs: cpuMeasured.system / 1000,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
  for (const c of slowConns) if (c.failed !== undefined) addCount(result.slow.failures, c.failed);
  return result;
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'plan':
      plan = m.plan;
      void openAll();
      break;
    case 'phase':
      phaseStarts[m.index] = m.startMs;
      if (m.index === 0) {
        for (const s of subscribers) s.measured = s.state === 'open';
        cpuAtStart = process.cpuUsage();
        loopDelay.enable();
        windowOpen = true;
        churning = plan.churn !== null;
        for (const s of subscribers) s.scheduleCut();
      }
      break;
    case 'open-slow':
      void openSlowAll();
      break;
    case 'stop':
      endMs = m.endMs;
      cpuMeasured = process.cpuUsage(cpuAtStart);
      churning = false;
      windowOpen = false;
      loopDelay.disable();
      for (const s of subscribers) s.stopChurn();
      break;
    case 'failover':
      for (const s of subscribers) s.moveTo(m.ports[s.globalIndex % m.ports.length]);
      break;
    case 'window-ids':
      send({ type: 'ids', ticks: idInfo.filter((x) => x.timeMs >= m.fromMs && x.timeMs <= m.toMs).map((x) => [x.id, x.pair, x.timeMs]) });
      break;
    case 'evaluate': {
      const result = evaluate(m.expected, m.killAtMs);
      void Promise.all(slowConns.map((c) => c.drain(2000))).then((drained) => {
        for (const d of drained) {
          result.slow.bytesRead += d.bytes;
          if (d.cutByServer) result.slow.cutByServer++;
        }
        send({ type: 'result', result });
      });
      break;
    }
    case 'close':
      closing = true;
      for (const s of subscribers) s.close();
      for (const c of slowConns) c.close();
      setTimeout(() => process.exit(0), 200).unref();
      process.disconnect();
      break;
  }
});
// The harness gone without a 'close' (killed): nothing is left to report to, and the subscribers must not outlive it.
process.on('disconnect', () => {
  if (!closing) process.exit(0);
});
