import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { AppConfig } from '../config/app-config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { PricePollerService } from '../ingest/price-poller.service';
import { TickLog } from '../stream/tick-log';
import { LeaderLease } from './leader-lease';
import { RedisClients } from './redis.clients';

const FOLLOWER_RETRY_MS = 1000;
/**
 * After a step that failed (Redis unreachable or not answering in time): try again this soon, so
 * that polling resumes within a poll of Redis answering again. A frozen Redis bounds the rate by
 * itself (each attempt waits for the command timeout); a closed connection fails at once, locally.
 */
const ERROR_RETRY_MS = 100;

/**
 * Makes exactly one instance poll: the holder of the `<prefix>:leader` lease. The holder renews
 * every LEADER_TTL_MS/3 and stops polling the moment its lease may have run out (a renewal that
 * says it is no longer ours, or no renewal before `validUntil` because Redis is unreachable).
 * The others try again every second (or LEADER_TTL_MS/3 if shorter), and right when the holder's lease expires. On
 * shutdown the lease is given up, so another instance takes over at its next attempt.
 */
@Injectable()
export class LeaderElection implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(LeaderElection.name);
  readonly lease: LeaderLease;
  private leader = false;
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private expiry: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly periodMs: number;
  private draining: Subscription | null = null;

  constructor(
    clients: RedisClients,
    private readonly config: AppConfig,
    private readonly poller: PricePollerService,
    private readonly log: TickLog,
    private readonly lifecycle: LifecycleService,
  ) {
    this.lease = new LeaderLease(clients.command, clients.key('leader'), config.leaderTtlMs);
    this.periodMs = Math.max(100, Math.floor(config.leaderTtlMs / 3));
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Before the poller's start-up poll: nobody polls until it holds the lease. */
  onModuleInit(): void {
    this.poller.setEnabled(false);
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
    // On SIGTERM, hand polling over at once rather than when the process is gone.
    this.draining = this.lifecycle.whenShutdownBegins(() => this.beforeApplicationShutdown());
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.draining?.unsubscribe();
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const wasLeader = this.leader;
    this.demote('shutdown');
    if (wasLeader) await this.lease.release().catch(() => false);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.step(), ms);
  }

  private async step(): Promise<void> {
    let next = this.periodMs;
    try {
      if (this.leader) {
        const validUntil = await this.lease.renew();
        if (this.stopped) return;
        if (validUntil === null) this.demote('lease lost');
        else this.extend(validUntil);
      } else {
        const result = await this.lease.tryAcquire();
        if (this.stopped) {
          if (result.acquired) await this.lease.release();
          return;
        }
        if (result.acquired) {
          this.extend(result.validUntil);
          await this.promote();
        } else {
          // Try again right as the holder's lease runs out, and at least every second so that a
          // lease given up on shutdown is taken over quickly (a SET NX a second is nothing).
          next = Math.min(this.periodMs, FOLLOWER_RETRY_MS, result.retryInMs + 5);
        }
      }
    } catch (err) {
      // Redis unreachable: a leader keeps polling until validUntil (the expiry timer), no longer.
      next = Math.min(this.periodMs, ERROR_RETRY_MS);
      this.logger.debug({ msg: 'lease step failed', leader: this.leader, error: err instanceof Error ? err.message : String(err) });
    } finally {
      this.schedule(next);
    }
  }

  private extend(validUntil: number): void {
    this.validUntil = validUntil;
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.demote('lease not renewed in time'), Math.max(0, validUntil - Date.now()));
  }

  private async promote(): Promise<void> {
    // The price dedup compares with the latest ticks, which come with the tail: let it reach
    // the newest entry first, so a price the previous leader already wrote is not written again.
    if (!(await this.log.catchUp())) {
      this.logger.warn({ msg: 'tail not caught up before polling; a price may repeat once' });
    }
    if (this.stopped || Date.now() >= this.validUntil) return;
    this.leader = true;
    this.logger.log({ msg: 'leader: polling the upstreams', token: this.lease.token, ttlMs: this.config.leaderTtlMs });
    this.poller.setEnabled(true);
  }

  private demote(reason: string): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    if (!this.leader) return;
    this.leader = false;
    this.poller.setEnabled(false);
    this.logger.log({ msg: 'no longer leader: polling stopped', reason });
  }
}
