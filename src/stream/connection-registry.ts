import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import proxyaddr from 'proxy-addr';
import type { Subscription } from 'rxjs';
import { ApiError } from '../http/api-error';
import { compareTickIds, parseTickId, type TickId } from '../domain/tick-id';
import { AppConfig, type TrustProxy } from '../config/app-config';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { MetricsService } from '../metrics/metrics.service';
import { TRANSPORTS, type DisconnectReason, type Transport } from '../shared/wire';
import { StreamAuth, type Grant } from '../auth/stream-auth';
import { parseStreamQuery, type RequestLimits, type StreamQuery, type SubscribeCommand } from './subscribe-request';
import { SlotBroker, SlotCounter } from './slots';
import { TickLog } from './tick-log';

/**
 * A stream's slot: `release` when the stream ends (counted as a disconnect), `cancel` when it never
 * opened. `grant`: what the stream's token grants (none: anonymous); the slot is then counted per
 * `sub`, not per address.
 */
export type Lease = { readonly transport: Transport; readonly ip: string; readonly grant?: Grant; release(reason: DisconnectReason): void; cancel(): void };

/** A stream opened through the gate: what it subscribes to (as its token allows), and its slot. */
export type Opened = { command: SubscribeCommand; lease: Lease };

/** The tier label of a stream: its token's, or `anonymous`. */
const tierOf = (grant: Grant | undefined): string => grant?.tier ?? 'anonymous';

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
  /** Open streams by tier (a bounded label: AUTH_TIERS, `other`, `anonymous`). */
  private readonly perTier = new Map<string, number>();

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly broker: SlotBroker,
  ) {
    metrics.onScrape(() => {
      for (const transport of TRANSPORTS) metrics.subscribers.set({ transport }, this.perTransport[transport]);
      if (config.workerIndex !== undefined) metrics.workerSubscribers.set({ worker: String(config.workerIndex) }, this.local.counts().total);
      if (config.auth) for (const [tier, n] of this.perTier) metrics.tierSubscribers.set({ tier }, n);
    });
  }

  /**
   * Takes a connection slot, or throws 429 TOO_MANY_CONNECTIONS. With a grant the cap counts the
   * token's `sub` (its maxConnections, else MAX_STREAM_CONNECTIONS_PER_IP), not the address.
   */
  async acquire(transport: Transport, ip: string, grant?: Grant): Promise<Lease> {
    const key = grant ? `sub:${grant.sub}` : ip;
    const refusal = await this.broker.take(key, grant?.maxConnections ?? undefined);
    if (refusal !== null) {
      this.metrics.refused(transport, 'TOO_MANY_CONNECTIONS');
      const cap = grant ? `at most ${grant.maxConnections ?? this.config.maxStreamConnectionsPerIp} streams per subscriber` : `at most ${this.config.maxStreamConnectionsPerIp} streams per client address`;
      throw new ApiError(429, 'TOO_MANY_CONNECTIONS', refusal === 'total' ? 'the server holds as many streams as it may; try again later or elsewhere' : cap);
    }
    this.local.take(key);
    this.perTransport[transport]++;
    const tier = tierOf(grant);
    this.perTier.set(tier, (this.perTier.get(tier) ?? 0) + 1);
    let released = false;
    const giveBack = (): boolean => {
      if (released) return false;
      released = true;
      this.broker.give(key);
      this.local.give(key);
      this.perTransport[transport]--;
      this.perTier.set(tier, (this.perTier.get(tier) ?? 1) - 1);
      return true;
    };
    return {
      transport,
      ip,
      grant,
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
    readonly auth: StreamAuth,
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
  async admit(transport: Transport, ip: string, grant?: Grant): Promise<Lease> {
    this.refuseWhileShuttingDown(transport);
    const lease = await this.registry.acquire(transport, ip, grant);
    if (this.lifecycle.isShuttingDown) {
      lease.cancel();
      this.refuseWhileShuttingDown(transport);
    }
    return lease;
  }

  /**
   * Validates a stream URL's query (4xx with a stable code), then its token (401, 403: StreamAuth;
   * a request that names no pairs gets those its token grants), then `admit`.
   */
  async open(transport: Transport, query: StreamQuery, ip: string, defaultPair?: string, token?: string): Promise<Opened> {
    const { grant, command } = await this.authorize(transport, query, defaultPair, token, true);
    return { command, lease: await this.admit(transport, ip, grant ?? undefined) };
  }

  /** `StreamAuth.entitle`; a refused opening is counted as a refused connection of the transport (unless `counted` is false). */
  entitle(transport: Transport, grant: Grant | null | undefined, command: SubscribeCommand, opening: boolean, counted = true): SubscribeCommand {
    try {
      if (command.pairs.length === 0) throw new ApiError(403, 'PAIR_NOT_ENTITLED', 'the token grants none of the configured pairs');
      return this.auth.entitle(grant ?? null, command, opening);
    } catch (err) {
      if (opening && counted && err instanceof ApiError) this.metrics.refused(transport, err.code);
      throw err;
    }
  }

  /**
   * A Socket.IO connection's slot, taken by address at its handshake, counted per `sub` from the
   * moment its namespace handshake shows a token: the new slot is taken, then the old one given back.
   */
  async rekey(lease: Lease, grant: Grant): Promise<Lease> {
    const next = await this.admit(lease.transport, lease.ip, grant);
    lease.cancel();
    return next;
  }

  /**
   * What `open` checks, without taking a slot (HEAD on a stream route): the query, the token and
   * what it grants (same codes as GET, not counted as refused connections), the shutdown.
   */
  async check(transport: Transport, query: StreamQuery, defaultPair?: string, token?: string): Promise<void> {
    await this.authorize(transport, query, defaultPair, token, false);
    this.refuseWhileShuttingDown(transport);
  }

  /** The query parsed, the token verified, and the subscription as the token grants it (a request naming no pairs gets those it grants). */
  private async authorize(transport: Transport, query: StreamQuery, defaultPair: string | undefined, token: string | undefined, counted: boolean): Promise<{ grant: Grant | null; command: SubscribeCommand }> {
    const parsed = parseStreamQuery(query, this.limits, Date.now(), defaultPair);
    const grant = await this.auth.authorize(transport, token, counted);
    const named = (query.pairs ?? '').trim() !== '' || defaultPair !== undefined;
    const granted = named ? undefined : this.auth.defaultPairs(grant);
    const command = this.entitle(transport, grant, granted === undefined ? parsed : { ...parsed, pairs: granted }, true, counted);
    return { grant, command };
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
