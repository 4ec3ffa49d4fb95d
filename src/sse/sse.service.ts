import { Injectable, Logger, Optional, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { ResumePoint } from '../common/resume';
import { idMs } from '../common/tick-id';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { ResetEvent, Tick } from '../shared/wire';
import type { DisconnectReason, Lease } from '../stream/connection-registry';
import { LiveFanout, type FanoutMember } from '../stream/live-fanout';
import { PriceStreamService } from '../stream/price-stream.service';
import { SseConnection, type SseResponse } from './sse-connection';
import { resetFrame, tickBytes, type FrameKind } from './sse-frames';

export type SseStreamRequest = {
  pairs: readonly string[];
  resume?: ResumePoint;
  kind: FrameKind;
  /** The registry slot; released when the stream ends, whatever ends it. */
  lease: Lease;
  /** For the stream's log lines (X-Request-Id, or one made up). */
  requestId?: string;
};

/** Counters for whoever exports metrics; nothing here depends on a metrics library. */
export type SseStats = {
  open: number;
  opened: number;
  closed: Record<DisconnectReason, number>;
};

/** One open stream: its response, its frame kind, registry slot and log context. All else is shared. */
class SseStream extends SseConnection implements FanoutMember {
  readonly openedAt = Date.now();

  constructor(
    res: SseResponse,
    readonly kind: FrameKind,
    readonly lease: Lease,
    readonly requestId: string | undefined,
    private readonly owner: SseService,
  ) {
    super(res, owner.maxBacklog, (reason) => owner.closed(this, reason));
  }

  onTick(tick: Tick): void {
    if (this.send(tickBytes(tick, this.kind, this.chunked))) this.owner.sent(tick, 1);
  }

  onReset(reset: ResetEvent): void {
    if (this.send(resetFrame(reset))) this.owner.sent(undefined, 1);
  }

  onEnd(): void {
    this.finish(this.owner.retryMs);
  }

  onError(err: unknown): void {
    this.owner.failed(this, err);
  }
}

/**
 * Runs SSE streams on raw responses: each joins the live fan-out (its replay first, then the
 * per-pair sets walked once per tick), gets shared frames, heartbeats from one timer for all
 * streams, and on any end (client gone, slow, shutdown, error) releases its membership,
 * listeners and registry lease.
 */
@Injectable()
export class SseService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SseService.name);
  private readonly connections = new Set<SseStream>();
  private readonly fanout: LiveFanout<SseStream>;
  private started = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private opened = 0;
  private readonly closedBy: Record<DisconnectReason, number> = { client: 0, slow: 0, limit: 0, shutdown: 0, error: 0 };
  readonly maxBacklog: number;
  readonly retryMs: number;

  constructor(
    prices: PriceStreamService,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    this.maxBacklog = config.clientBufferSize;
    this.retryMs = config.sseRetryMs;
    this.fanout = new LiveFanout<SseStream>(prices, config.pairs, (tick, members) => this.broadcast(tick, members));
  }

  onApplicationBootstrap(): void {
    this.start();
  }

  /** Starts a stream on a response whose request was already validated and leased. */
  stream(res: SseResponse, req: SseStreamRequest): void {
    this.start();
    const conn = new SseStream(res, req.kind, req.lease, req.requestId, this);
    this.connections.add(conn);
    this.opened++;
    this.startHeartbeat();
    conn.open(this.retryMs);
    this.logger.debug({ msg: 'stream opened', transport: 'sse', requestId: req.requestId, ip: req.lease.ip, pairs: req.pairs, resume: req.resume?.kind ?? 'none' });
    this.fanout.join(conn, req.pairs, req.resume);
  }

  /** Streams now open on this instance. */
  get openCount(): number {
    return this.connections.size;
  }

  get heartbeatActive(): boolean {
    return this.heartbeatTimer !== undefined;
  }

  stats(): SseStats {
    return { open: this.connections.size, opened: this.opened, closed: { ...this.closedBy } };
  }

  /** Streams normally end when the price channels complete; this catches any left behind. */
  onApplicationShutdown(): void {
    for (const conn of [...this.connections]) conn.finish(this.retryMs);
    this.fanout.stop();
    this.stopHeartbeat();
  }

  /** @internal SseStream's end: whatever ended it, everything it held is released here once. */
  closed(conn: SseStream, reason: DisconnectReason): void {
    this.fanout.leave(conn);
    this.connections.delete(conn);
    if (this.connections.size === 0) this.stopHeartbeat();
    this.closedBy[reason]++;
    conn.lease.release(reason);
    this.logger.log({ msg: 'stream closed', transport: 'sse', requestId: conn.requestId, ip: conn.lease.ip, reason, durationMs: Date.now() - conn.openedAt });
    if (reason === 'slow') this.logger.warn({ msg: 'disconnected a slow SSE subscriber', ip: conn.lease.ip, limit: this.maxBacklog });
  }

  /** @internal Counts messages sent (a tick's, with its delivery lag, or a reset). */
  sent(tick: Tick | undefined, count: number): void {
    this.metrics?.sent('sse', tick && idMs(tick.id), count);
  }

  /** @internal The stream's resume read failed. */
  failed(conn: SseStream, err: unknown): void {
    this.logger.error({ msg: 'SSE stream failed', err });
    conn.close('error');
  }

  /** The hot loop: bytes built once per tick, one write per stream (corked until the turn ends). */
  private broadcast(tick: Tick, members: ReadonlySet<SseStream>): void {
    let count = 0;
    for (const conn of members) if (conn.send(tickBytes(tick, conn.kind, conn.chunked))) count++;
    this.sent(tick, count);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.fanout.start();
  }

  // One timer for every stream: thousands of streams cost one timer, not thousands.
  private startHeartbeat(): void {
    if (this.heartbeatTimer) return;
    this.heartbeatTimer = setInterval(() => {
      for (const conn of this.connections) conn.heartbeat();
    }, this.config.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (!this.heartbeatTimer) return;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
