import { Logger as NestLogger, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import cluster, { type Worker } from 'node:cluster';
import { Socket } from 'node:net';
import { Logger } from 'nestjs-pino';
import { writeRawError } from '../http/raw-response';
import { ownSocket } from '../http/socket-guard';
import type { AppConfig } from '../config/app-config';
import { MetricsService, type MetricsJson } from '../metrics/metrics.service';
import { CandleStore } from '../candles/candle-store';
import { PricePollerService } from '../ingest/price-poller.service';
import { SourceRegistry } from '../sources/source-registry';
import { SlotCounter } from '../stream/slots';
import { TickLog } from '../stream/tick-log';
import type { ErrorBody } from '../shared/wire';
import { answerWhenDone, isOurs, Requests, type JsonAnswer, type ToPrimary, type ToWorker } from './ipc';
import { PrimaryModule, PrimaryTickLog, type TickBus } from './primary.module';
import { stopReading, workerCapacity } from './routing';

/** How long the primary waits for every first worker before it says it is listening with the ones that are up. */
const START_TIMEOUT_MS = 60_000;
/** Restart delays after a crash: doubling from the first, up to the last; reset once a worker lived a minute. */
const RESTART_FIRST_MS = 250;
const RESTART_MAX_MS = 10_000;
const STABLE_AFTER_MS = 60_000;
/** How long a metrics scrape waits for each worker. */
const METRICS_TIMEOUT_MS = 2_000;

/** One forked worker, as the primary sees it. */
type Member = {
  readonly index: number;
  readonly worker: Worker;
  readonly startedAt: number;
  readonly requests: Requests;
  /** It has the window (hello answered): every tick from then on goes to it. */
  joined: boolean;
  /** It serves: it said `ready`, and its channel is open. */
  ready: boolean;
  /** Connections it last said it holds, and how many were forwarded to it since. */
  open: number;
  handed: number;
  /** Stream slots it holds, by client address (given back when it exits). */
  readonly slots: Map<string, number>;
};

/**
 * The primary process of WORKERS > 1: it forks the workers, restarts one that dies, counts the
 * connection slots of the whole service, gathers metrics, drains the workers on SIGTERM, and
 * without REDIS_URL polls the upstreams and forwards every tick to every worker (see
 * PrimaryTickLog). It serves no HTTP itself.
 *
 * The workers accept from one listening socket, which the cluster module shares among them
 * (SCHED_NONE: each worker accepts for itself; the kernel gives a connection to a worker that
 * is waiting for one). A worker that gets a request of another worker's engine.io session, or
 * that holds as many connections as it may open files, passes the connection here with the
 * bytes it read, and the primary passes it on (`forward`). Passing a connection costs a round
 * trip per connection between two event loops, one at a time per worker (Node waits for each
 * handle's acknowledgement): fine for the few that need it, not for every connection (see
 * docs/scaling.md).
 */
export class Primary {
  private readonly logger = new NestLogger('Primary');
  private readonly members = new Map<number, Member>();
  private readonly failures = new Map<number, number>();
  private readonly slots: SlotCounter;
  private readonly capacity = workerCapacity();
  private ctx: INestApplicationContext | undefined;
  private metrics: MetricsService | undefined;
  private log: PrimaryTickLog | undefined;
  private poller: PricePollerService | undefined;
  private candles: CandleStore | undefined;
  private stopping = false;
  /** A worker has served: from then on a worker that dies is restarted; before, the service cannot start. */
  private started = false;
  private pending: Extract<ToWorker, { ps: 'feed' }> | undefined;
  private overrun: NodeJS.Timeout | undefined;
  private stopLevel = 0;
  private unclean = false;

  constructor(private readonly config: AppConfig) {
    this.slots = new SlotCounter(config.maxStreamConnections, config.maxStreamConnectionsPerIp);
  }

  async start(): Promise<void> {
    const bus: TickBus = {
      tick: (tick) => this.feed().ticks.push(tick),
      confirmation: (confirmation) => this.feed().confirmations.push(confirmation),
    };
    const ctx = await NestFactory.createApplicationContext(PrimaryModule.register(this.config, bus), { bufferLogs: true });
    ctx.useLogger(ctx.get(Logger));
    this.ctx = ctx;
    this.metrics = ctx.get(MetricsService);
    if (!this.config.redis) {
      this.log = ctx.get(TickLog) as PrimaryTickLog;
      this.poller = ctx.get(PricePollerService);
      this.candles = ctx.get(CandleStore);
    }

    cluster.on('message', (worker, msg: unknown, handle: unknown) => {
      if (isOurs(msg)) this.receive(worker, msg as ToPrimary, handle);
    });
    cluster.on('disconnect', (worker) => this.gone(worker));
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    process.on('SIGTERM', (s) => this.stop(s));
    process.on('SIGINT', (s) => this.stop(s));
    // Set before the first fork: every worker then accepts on the shared socket itself.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (let i = 1; i <= this.config.workers; i++) this.fork(i);
    await this.firstWorkers();
    const sources = this.log ? ctx.get(SourceRegistry).sources.map((s) => s.name) : undefined;
    this.logger.log({
      msg: 'listening',
      url: `http://${this.config.host}:${this.config.port}`,
      workers: this.config.workers,
      pairs: this.config.pairs,
      polling: this.log ? 'primary' : 'leader (Redis)',
      ...(sources ? { sources } : {}),
      ...(sources?.includes('simulated') ? { simulatedSeed: this.config.simulatedSeed } : {}),
    });
  }

  private fork(index: number): void {
    const worker = cluster.fork({ WORKER_INDEX: String(index) });
    // A send to a worker that has just died fails with EPIPE; 'exit' follows and restarts it.
    worker.on('error', (err) => this.logger.warn({ msg: 'channel to a worker failed', slot: index, err: err.message }));
    const member: Member = {
      index,
      worker,
      startedAt: Date.now(),
      requests: new Requests((msg) => this.send(member, msg as ToWorker)),
      joined: false,
      ready: false,
      open: 0,
      handed: 0,
      slots: new Map(),
    };
    this.members.set(worker.id, member);
  }

  private send(member: Member, msg: ToWorker): void {
    if (member.worker.isConnected()) member.worker.send(msg);
  }

  /**
   * What the primary committed in this event-loop turn, sent to every worker that has the
   * window as one message when the turn ends: the worker then hands a poll's ticks to its
   * subscribers in one turn too (one write per subscriber, as in a process alone).
   */
  private feed(): Extract<ToWorker, { ps: 'feed' }> {
    if (!this.pending) {
      const pending: Extract<ToWorker, { ps: 'feed' }> = { ps: 'feed', ticks: [], confirmations: [] };
      this.pending = pending;
      setImmediate(() => {
        this.pending = undefined;
        for (const m of this.members.values()) if (m.joined) this.send(m, pending);
      });
    }
    return this.pending;
  }

  /** Resolves once every worker is ready, or after START_TIMEOUT_MS with at least one. */
  private firstWorkers(): Promise<void> {
    return new Promise((resolve) => {
      const started = Date.now();
      const check = setInterval(() => {
        const ready = [...this.members.values()].filter((m) => m.ready).length;
        if (ready >= this.config.workers || (ready > 0 && Date.now() - started > START_TIMEOUT_MS)) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
  }

  private receive(worker: Worker, msg: ToPrimary, handle: unknown): void {
    const member = this.members.get(worker.id);
    if (!member) return;
    switch (msg.ps) {
      case 'hello':
        // The window, then (in order, on the same channel) every tick after it; a tick of this
        // turn is in both, and the replica ignores it the second time (an id not past its newest).
        member.joined = true;
        return this.send(member, { ps: 'answer', n: msg.n, value: this.log?.snapshot() ?? null });
      case 'ready':
        member.ready = true;
        this.started = true;
        this.logger.log({ msg: 'worker ready', slot: member.index, workerPid: worker.process.pid });
        return;
      case 'take': {
        const refusal = this.slots.take(msg.ip);
        if (refusal === null) member.slots.set(msg.ip, (member.slots.get(msg.ip) ?? 0) + 1);
        return this.send(member, { ps: 'answer', n: msg.n, value: refusal });
      }
      case 'give': {
        const held = member.slots.get(msg.ip) ?? 0;
        if (held === 0) return;
        if (held > 1) member.slots.set(msg.ip, held - 1);
        else member.slots.delete(msg.ip);
        this.slots.give(msg.ip);
        return;
      }
      case 'load':
        member.open = msg.open;
        member.handed = 0;
        return;
      case 'forward':
        if (!(handle instanceof Socket)) return;
        // Held here until it is passed on: not read (what it sends waits for the worker), and a
        // client that resets it must not take the primary down.
        ownSocket(handle);
        stopReading(handle);
        this.forward(member, handle, msg.head, msg.to);
        return;
      case 'metrics':
        return answerWhenDone((m) => this.send(member, m), msg.n, this.gatherMetrics(), '');
      case 'refresh':
      case 'sources': {
        const poller = this.poller;
        const work = !poller ? Promise.resolve(null) : msg.ps === 'refresh' ? poller.refresh(msg.pairs) : poller.sourcesReport();
        return answerWhenDone((m) => this.send(member, m), msg.n, work);
      }
      case 'candles':
        return answerWhenDone((m) => this.send(member, m), msg.n, Promise.resolve(this.candles?.snapshot(msg.fills) ?? { fills: 0, pairs: null }), { fills: 0, pairs: null });
      case 'answer':
        member.requests.settle(msg.n, msg.value);
        return;
    }
  }

  /** Every process' metrics (the primary's own, every worker's that answers in time), summed. */
  private async gatherMetrics(): Promise<string> {
    const parts = await Promise.all([
      this.metrics ? this.metrics.json() : Promise.resolve([] as MetricsJson),
      ...[...this.members.values()].filter((m) => m.ready).map((m) => m.requests.request<JsonAnswer>({ ps: 'json' }, METRICS_TIMEOUT_MS).catch(() => [] as MetricsJson)),
    ]);
    return MetricsService.aggregate(parts.filter((p) => Array.isArray(p) && p.length > 0));
  }

  /**
   * A connection a worker passed on: to the worker of its engine.io session (`to`), or, when the
   * sender is full or that worker is gone, to the one with the fewest connections that has room.
   */
  private forward(from: Member, socket: Socket, head: string, to: number | null): void {
    const owner = to === null ? undefined : this.members.get(to);
    let target = owner?.ready ? owner : undefined;
    if (!target) {
      for (const m of this.members.values()) {
        if (!m.ready || (to === null && m === from) || m.open + m.handed >= this.capacity) continue;
        if (!target || m.open + m.handed < target.open + target.handed) target = m;
      }
    }
    if (!target) return this.unavailable(socket);
    target.handed++;
    target.worker.send({ ps: 'conn', head } satisfies ToWorker, socket, { keepOpen: false }, (err) => {
      if (err) socket.destroy();
    });
  }

  private unavailable(socket: Socket): void {
    const anyReady = [...this.members.values()].some((m) => m.ready);
    const body: ErrorBody = anyReady
      ? { statusCode: 503, code: 'TOO_MANY_CONNECTIONS', message: 'every worker holds as many connections as it may open files; try again later or elsewhere' }
      : { statusCode: 503, code: 'SHUTTING_DOWN', message: 'no worker is running; retry shortly' };
    writeRawError(socket, body, { 'Retry-After': '1' });
  }

  /** A worker's channel closed (it exited or is about to): nothing more goes to it, and its slots are free at once. */
  private gone(worker: Worker): void {
    const member = this.members.get(worker.id);
    if (!member) return;
    member.ready = false;
    member.joined = false;
    member.requests.failAll('the worker exited');
    for (const [ip, n] of member.slots) this.slots.give(ip, n);
    member.slots.clear();
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    const member = this.members.get(worker.id);
    if (!member) return;
    this.gone(worker);
    this.members.delete(worker.id);
    if (this.stopping) {
      // A worker that overran its own SHUTDOWN_TIMEOUT_MS exits 1: so does the service.
      if (code !== 0) this.unclean = true;
      this.logger.log({ msg: 'worker stopped', slot: member.index, workerPid: worker.process.pid, code, signal });
      if (this.members.size === 0) void this.finish();
      return;
    }
    if (!this.started) {
      // Nothing ever started (the port is taken, say): restarting would only repeat it.
      this.logger.error({ msg: 'a worker failed to start; stopping', slot: member.index, workerPid: worker.process.pid, code, signal });
      this.stopping = true;
      for (const m of this.members.values()) m.worker.process.kill('SIGKILL');
      process.exit(1);
    }
    const failures = Date.now() - member.startedAt > STABLE_AFTER_MS ? 1 : (this.failures.get(member.index) ?? 0) + 1;
    this.failures.set(member.index, failures);
    const delay = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** (failures - 1));
    this.metrics?.workerRestarts.inc({ worker: String(member.index) });
    this.logger.error({ msg: 'worker exited; restarting it', slot: member.index, workerPid: worker.process.pid, code, signal, restartInMs: delay, held: member.open + member.handed });
    setTimeout(() => {
      if (!this.stopping) this.fork(member.index);
    }, delay);
  }

  /**
   * SIGTERM or SIGINT: every worker shuts down as a process on its own does (SHUTDOWN_DELAY_MS
   * with readiness down, then its streams end with a reconnect hint within SHUTDOWN_TIMEOUT_MS);
   * each keeps accepting through the delay and stops when its shutdown starts. A second signal
   * is passed on.
   */
  private stop(signal: NodeJS.Signals): void {
    // Over the channel, numbered: a worker that also got the signal itself (systemd signals the
    // whole group) must not take the primary's pass-on for a second signal.
    this.stopLevel++;
    const sig = signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
    for (const m of this.members.values()) this.send(m, { ps: 'stop', signal: sig, level: this.stopLevel });
    if (this.stopping) return;
    this.stopping = true;
    this.logger.log({ msg: 'stopping the workers', signal, workers: this.members.size });
    const delay = signal === 'SIGTERM' ? this.config.shutdownDelayMs : 0;
    this.overrun = setTimeout(() => {
      this.logger.error({ msg: 'workers overran SHUTDOWN_TIMEOUT_MS, killing them', timeoutMs: this.config.shutdownTimeoutMs });
      for (const m of this.members.values()) m.worker.process.kill('SIGKILL');
      process.exit(1);
    }, delay + this.config.shutdownTimeoutMs + 1_000);
    this.overrun.unref();
    if (this.members.size === 0) void this.finish();
  }

  /** Every worker is gone: the primary's own context (the poller) closes within its own bound. */
  private async finish(): Promise<void> {
    if (this.overrun) clearTimeout(this.overrun);
    setTimeout(() => {
      this.logger.error({ msg: "the primary's shutdown overran SHUTDOWN_TIMEOUT_MS", timeoutMs: this.config.shutdownTimeoutMs });
      process.exit(1);
    }, this.config.shutdownTimeoutMs).unref();
    try {
      await this.ctx?.close();
      this.logger.log({ msg: 'stopped', clean: !this.unclean });
      process.exit(this.unclean ? 1 : 0);
    } catch (err) {
      this.logger.error({ msg: 'error while shutting down', err });
      process.exit(1);
    }
  }
}
