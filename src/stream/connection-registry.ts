import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import proxyaddr from 'proxy-addr';
import type { Subscription } from 'rxjs';
import { ApiError } from '../http/api-error';
import { compareTickIds, parseTickId, type TickId } from '../domain/tick-id';
import { AppConfig, type TrustProxy } from '../config/app-config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { MetricsService } from '../metrics/metrics.service';
import { TRANSPORTS, type DisconnectReason, type Transport } from '../shared/wire';
import { parseStreamQuery, type RequestLimits, type StreamQuery, type SubscribeCommand } from './subscribe-request';
import { SlotBroker, SlotCounter } from './slots';
import { TickLog } from './tick-log';

/** A stream's slot: `release` when the stream ends (counted as a disconnect), `cancel` when it never opened. */
export type Lease = { readonly transport: Transport; readonly ip: string; release(reason: DisconnectReason): void; cancel(): void };

/**
 * Counts open stream connections of every transport against MAX_STREAM_CONNECTIONS and
 * MAX_STREAM_CONNECTIONS_PER_IP: one budget shared by SSE, Socket.IO (every engine.io
 * connection, whatever namespace it asks for) and WebSocket. The budget is the SlotBroker's:
 * this process' own (LocalSlots), or with workers the whole service's, kept by the primary.
 * `counts` are this process' connections.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly local = new SlotCounter(Infinity, Infinity);
  private readonly perTransport = Object.fromEntries(TRANSPORTS.map((t) => [t, 0])) as Record<Transport, number>;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly broker: SlotBroker,
  ) {
    metrics.onScrape(() => {
      for (const transport of TRANSPORTS) metrics.subscribers.set({ transport }, this.perTransport[transport]);
      if (config.workerIndex !== undefined) metrics.workerSubscribers.set({ worker: String(config.workerIndex) }, this.local.counts().total);
    });
  }

  /** Takes a connection slot, or throws 429 TOO_MANY_CONNECTIONS. */
  async acquire(transport: Transport, ip: string): Promise<Lease> {
    const refusal = await this.broker.take(ip);
    if (refusal !== null) {
      this.metrics.refused(transport, 'TOO_MANY_CONNECTIONS');
      throw new ApiError(
        429,
        'TOO_MANY_CONNECTIONS',
        refusal === 'total' ? 'the server holds as many streams as it may; try again later or elsewhere' : `at most ${this.config.maxStreamConnectionsPerIp} streams per client address`,
      );
    }
    this.local.take(ip);
    this.perTransport[transport]++;
    let released = false;
    const giveBack = (): boolean => {
      if (released) return false;
      released = true;
      this.broker.give(ip);
      this.local.give(ip);
      this.perTransport[transport]--;
      return true;
    };
    return {
      transport,
      ip,
      release: (reason) => {
        if (giveBack()) this.metrics.disconnected(transport, reason);
      },
      cancel: () => void giveBack(),
    };
  }

  counts(): { total: number; ips: number } & Record<Transport, number> {
    return { ...this.local.counts(), ...this.perTransport };
  }
}

/**
 * The one way into a stream, for every transport: the shutdown check, then a connection slot;
 * for the transports that subscribe in their URL (SSE, WebSocket), the request parsed first.
 */
@Injectable()
export class StreamGate implements OnModuleDestroy {
  readonly limits: RequestLimits;
  private readonly trust: ((addr: string, index: number) => boolean) | undefined;
  /** The newest id committed$ delivered: with Redis, ids come from Redis' clock, so this instance's clock cannot judge them. */
  private newest: TickId | null = null;
  private readonly tracking: Subscription;

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly lifecycle: LifecycleService,
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
    private readonly log: TickLog,
  ) {
    this.limits = { pairs: config.pairSet, maxPairs: config.maxPairsPerRequest, newestId: () => this.newestId() };
    this.trust = trustFunction(config.trustProxy);
    this.tracking = log.committed$.subscribe((tick) => (this.newest = parseTickId(tick.id)));
  }

  onModuleDestroy(): void {
    this.tracking.unsubscribe();
  }

  /** The newest id known to have been published: the last one delivered, or the log's own (ticks from before this instance started). */
  newestId(): TickId | null {
    const stored = this.log.stats().newestId;
    const fromLog = stored === null ? null : parseTickId(stored);
    if (this.newest === null) return fromLog;
    return fromLog !== null && compareTickIds(fromLog, this.newest) > 0 ? fromLog : this.newest;
  }

  /**
   * Rejects with 503 SHUTTING_DOWN while the process drains, 429 TOO_MANY_CONNECTIONS past a cap.
   * With workers the slot is the primary's to give (a message there and back), so the shutdown
   * is checked again once it is taken.
   */
  async admit(transport: Transport, ip: string): Promise<Lease> {
    this.refuseWhileShuttingDown(transport);
    const lease = await this.registry.acquire(transport, ip);
    if (this.lifecycle.isShuttingDown) {
      lease.cancel();
      this.refuseWhileShuttingDown(transport);
    }
    return lease;
  }

  /** Validates a stream URL's query (4xx with a stable code, thrown at once), then `admit`. */
  open(transport: Transport, query: StreamQuery, ip: string, defaultPair?: string): { command: SubscribeCommand; lease: Promise<Lease> } {
    const command = parseStreamQuery(query, this.limits, Date.now(), defaultPair);
    return { command, lease: this.admit(transport, ip) };
  }

  /** What `open` checks, without taking a slot (HEAD on a stream route). */
  check(transport: Transport, query: StreamQuery, defaultPair?: string): void {
    parseStreamQuery(query, this.limits, Date.now(), defaultPair);
    this.refuseWhileShuttingDown(transport);
  }

  private refuseWhileShuttingDown(transport: Transport): void {
    if (!this.lifecycle.isShuttingDown) return;
    this.metrics.refused(transport, 'SHUTTING_DOWN');
    throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down; reconnect shortly');
  }

  /**
   * The client's address, as Express' `req.ip` (the REST rate limit) computes it from the same
   * TRUST_PROXY: the socket's own address, or with trusted proxies in front the right-most
   * `X-Forwarded-For` entry that is not one of them. Entries left of it are whatever the client
   * wrote and are never used.
   */
  clientIp(headers: Record<string, string | string[] | undefined>, remoteAddress: string | undefined): string {
    if (remoteAddress === undefined) return 'unknown';
    if (this.trust === undefined) return remoteAddress;
    const xff = headers['x-forwarded-for'];
    return proxyaddr({ headers: { 'x-forwarded-for': Array.isArray(xff) ? xff.join(',') : xff }, socket: { remoteAddress } }, this.trust);
  }
}

/** Express' own compilation of `trust proxy` (express/lib/utils.js compileTrust) for our values. */
function trustFunction(value: TrustProxy): ((addr: string, index: number) => boolean) | undefined {
  if (value === false || value === 0) return undefined;
  if (typeof value === 'number') return (_addr, index) => index < value;
  return proxyaddr.compile(value);
}
