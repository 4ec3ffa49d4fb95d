import { Logger as NestLogger, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from '../config/app-config';
import { exitAfterLogs } from '../logging/stdout-log';
import { MetricsService } from '../metrics/metrics.service';
import { SourceRegistry } from '../sources/source-registry';
import { backoffDelay, type BackoffPolicy } from '../util/backoff';
import { isOurs, type ToPrimary } from './ipc';
import { Members, type Member, type Seam } from './members';
import { PrimaryModule } from './primary.module';
import { PrimaryDoors } from './primary-doors';
import { PrimaryMetrics } from './primary-metrics';
import { PrimarySlots } from './primary-slots';
import { PrimaryTicks } from './primary-ticks';
import { RELAY_KEY_ENV } from './relay';

/** How long the primary waits for every first worker before it says it is listening with the ones that are up. */
const START_TIMEOUT_MS = 60_000;
/** Restart delays after a crash: doubling from 250 ms up to 10 s, no jitter; reset once a worker lived a minute. */
const RESTART_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 10_000, jitter: 0 };
const STABLE_AFTER_MS = 60_000;

/**
 * The primary process of WORKERS > 1, a supervisor: it forks the workers, restarts one that dies
 * (with backoff), waits for them to be ready, and drains them on SIGTERM. It serves no HTTP
 * itself. Every cross-process concern is a seam of its own, to which it hands each worker's
 * messages:
 * - PrimaryTicks (primary-ticks.ts): without REDIS_URL the primary polls the upstreams and every
 *   tick goes to every worker (see PrimaryTickLog); the workers' refreshes go to its poller;
 * - PrimarySlots (primary-slots.ts): the connection slots of the whole service;
 * - PrimaryMetrics (primary-metrics.ts): every process' metrics, summed;
 * - PrimaryDoors (primary-doors.ts): which workers accept on the shared port (a full one stops
 *   while another accepts).
 */
export class Primary {
  private readonly logger = new NestLogger('Primary');
  private readonly members = new Members();
  private readonly failures = new Map<number, number>();
  private readonly ticks = new PrimaryTicks(this.members);
  private readonly slots: PrimarySlots;
  private readonly doors = new PrimaryDoors(this.members);
  /** The key of the relay between workers (relay.ts), for this primary's workers only. */
  private readonly relayKey = randomBytes(16).toString('hex');
  private metrics: PrimaryMetrics | undefined;
  private ctx: INestApplicationContext | undefined;
  private metricsService: MetricsService | undefined;
  private stopping = false;
  /** A worker has served: from then on a worker that dies is restarted; before, the service cannot start. */
  private started = false;
  private overrun: NodeJS.Timeout | undefined;
  private stopLevel = 0;
  private unclean = false;

  constructor(private readonly config: AppConfig) {
    this.slots = new PrimarySlots(this.members, config);
  }

  /** The seams that let go of what a worker held when it is gone (the metrics hold nothing). */
  private get holders(): Required<Pick<Seam<never>, 'gone'>>[] {
    return [this.ticks, this.slots, this.doors];
  }

  async start(): Promise<void> {
    const ctx = await NestFactory.createApplicationContext(PrimaryModule.register(this.config, this.ticks.bus), { bufferLogs: true });
    ctx.useLogger(ctx.get(Logger));
    this.ctx = ctx;
    const metrics = ctx.get(MetricsService);
    this.metricsService = metrics;
    this.metrics = new PrimaryMetrics(this.members, metrics);
    const polls = !this.config.redis;
    this.ticks.serveFrom(ctx, polls);

    cluster.on('message', (worker, msg: unknown) => {
      if (isOurs(msg)) this.receive(worker, msg as ToPrimary);
    });
    cluster.on('disconnect', (worker) => this.gone(worker));
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    process.on('SIGTERM', (s) => this.stop(s));
    process.on('SIGINT', (s) => this.stop(s));
    // Set before the first fork: every worker then accepts on the shared socket itself.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (let i = 1; i <= this.config.workers; i++) this.fork(i);
    await this.firstWorkers();
    const sources = polls ? ctx.get(SourceRegistry).sources.map((s) => s.name) : undefined;
    this.logger.log({
      msg: 'listening',
      url: `http://${this.config.host}:${this.config.port}`,
      workers: this.config.workers,
      pairs: this.config.pairs,
      polling: polls ? 'primary' : 'leader (Redis)',
      ...(sources ? { sources } : {}),
      ...(sources?.includes('simulated') ? { simulatedSeed: this.config.simulatedSeed } : {}),
    });
  }

  private fork(index: number): void {
    const worker = cluster.fork({ WORKER_INDEX: String(index), [RELAY_KEY_ENV]: this.relayKey });
    // A send to a worker that has just died fails with EPIPE; 'exit' follows and restarts it.
    worker.on('error', (err) => this.logger.warn({ msg: 'channel to a worker failed', slot: index, err: err.message }));
    this.members.add(index, worker);
  }

  /** Resolves once every worker is ready, or after START_TIMEOUT_MS with at least one. */
  private firstWorkers(): Promise<void> {
    return new Promise((resolve) => {
      const started = Date.now();
      const check = setInterval(() => {
        const ready = this.members.ready().length;
        if (ready >= this.config.workers || (ready > 0 && Date.now() - started > START_TIMEOUT_MS)) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
  }

  /** A worker's message: readiness and answers are the supervisor's, the rest goes to its seam. */
  private receive(worker: Worker, msg: ToPrimary): void {
    const member = this.members.get(worker.id);
    if (!member) return;
    switch (msg.ps) {
      case 'ready':
        member.ready = true;
        this.started = true;
        this.logger.log({ msg: 'worker ready', slot: member.index, workerPid: worker.process.pid });
        return;
      case 'answer':
        return member.requests.settle(msg.n, msg.value);
      case 'hello':
      case 'refresh':
      case 'sources':
      case 'candles':
        return this.ticks.receive(member, msg);
      case 'take':
      case 'give':
        return this.slots.receive(member, msg);
      case 'metrics':
        return this.metrics?.receive(member, msg);
      case 'full':
      case 'open':
        return this.doors.receive(member, msg);
    }
  }

  /** A worker's channel closed (it exited or is about to): nothing more goes to it, and what it held is let go at once. */
  private gone(worker: Worker): void {
    const member = this.members.get(worker.id);
    if (!member) return;
    member.ready = false;
    member.requests.failAll('the worker exited');
    for (const seam of this.holders) seam.gone(member);
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
      this.killAll();
      return exitAfterLogs(1);
    }
    this.restart(member, { workerPid: worker.process.pid, code, signal });
  }

  /** Forks the worker's slot again after a backoff that grows with its crashes in a row (one that lived a minute starts over). */
  private restart(member: Member, exit: { workerPid: number | undefined; code: number | null; signal: string | null }): void {
    const failures = Date.now() - member.startedAt > STABLE_AFTER_MS ? 1 : (this.failures.get(member.index) ?? 0) + 1;
    this.failures.set(member.index, failures);
    const delay = backoffDelay(failures, RESTART_BACKOFF);
    this.metricsService?.workerRestarts.inc({ worker: String(member.index) });
    const { workerPid, code, signal } = exit;
    this.logger.error({ msg: 'worker exited; restarting it', slot: member.index, workerPid, code, signal, restartInMs: delay });
    setTimeout(() => {
      if (!this.stopping) this.fork(member.index);
    }, delay);
  }

  private killAll(): void {
    for (const m of this.members.all()) m.worker.process.kill('SIGKILL');
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
    for (const m of this.members.all()) this.members.send(m, { ps: 'stop', signal: sig, level: this.stopLevel });
    if (this.stopping) return;
    this.stopping = true;
    this.logger.log({ msg: 'stopping the workers', signal, workers: this.members.size });
    const delay = signal === 'SIGTERM' ? this.config.shutdownDelayMs : 0;
    this.overrun = setTimeout(() => {
      this.logger.error({ msg: 'workers overran SHUTDOWN_TIMEOUT_MS, killing them', timeoutMs: this.config.shutdownTimeoutMs });
      this.killAll();
      exitAfterLogs(1);
    }, delay + this.config.shutdownTimeoutMs + 1_000);
    this.overrun.unref();
    if (this.members.size === 0) void this.finish();
  }

  /** Every worker is gone: the primary's own context (the poller) closes within its own bound. */
  private async finish(): Promise<void> {
    if (this.overrun) clearTimeout(this.overrun);
    setTimeout(() => {
      this.logger.error({ msg: "the primary's shutdown overran SHUTDOWN_TIMEOUT_MS", timeoutMs: this.config.shutdownTimeoutMs });
      exitAfterLogs(1);
    }, this.config.shutdownTimeoutMs).unref();
    try {
      await this.ctx?.close();
      this.logger.log({ msg: 'stopped', clean: !this.unclean });
      exitAfterLogs(this.unclean ? 1 : 0);
    } catch (err) {
      this.logger.error({ msg: 'error while shutting down', err });
      exitAfterLogs(1);
    }
  }
}
