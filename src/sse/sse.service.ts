import { Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { Subscription } from 'rxjs';
import type { ResumePoint } from '../common/resume';
import { idMs } from '../common/tick-id';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { DisconnectReason, Lease } from '../stream/connection-registry';
import { PriceStreamService } from '../stream/price-stream.service';
import { SseConnection, type SseResponse } from './sse-connection';
import { resetFrame, tickFrame, type FrameKind } from './sse-frames';

export type SseStreamRequest = {
  pairs: readonly string[];
  resume?: ResumePoint;
  kind: FrameKind;
  /** The registry slot; released when the stream ends, whatever ends it. */
  lease: Lease;
};

/** Counters for whoever exports metrics; nothing here depends on a metrics library. */
export type SseStats = {
  open: number;
  opened: number;
  closed: Record<DisconnectReason, number>;
};

/**
 * Runs SSE streams on raw responses: subscribes to the price stream, writes shared frames,
 * sends heartbeats from one timer for all streams, and on any end (client gone, slow,
 * shutdown, error) releases the subscription, listeners and registry lease.
 */
@Injectable()
export class SseService implements OnApplicationShutdown {
  private readonly logger = new Logger(SseService.name);
  private readonly connections = new Set<SseConnection>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private opened = 0;
  private readonly closed: Record<DisconnectReason, number> = { client: 0, slow: 0, limit: 0, shutdown: 0, error: 0 };

  constructor(
    private readonly prices: PriceStreamService,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /** Starts a stream on a response whose request was already validated and leased. */
  stream(res: SseResponse, req: SseStreamRequest): void {
    const subscription = new Subscription();
    const conn = new SseConnection(res, this.config.clientBufferSize, (reason) => {
      subscription.unsubscribe();
      this.connections.delete(conn);
      if (this.connections.size === 0) this.stopHeartbeat();
      this.closed[reason]++;
      req.lease.release(reason);
      this.logger.debug({ msg: 'stream closed', transport: 'sse', reason, ip: req.lease.ip });
      if (reason === 'slow') this.logger.warn({ msg: 'disconnected a slow SSE subscriber', ip: req.lease.ip, limit: this.config.clientBufferSize });
    });
    this.connections.add(conn);
    this.opened++;
    this.startHeartbeat();
    conn.open(this.config.sseRetryMs);
    this.logger.debug({ msg: 'stream opened', transport: 'sse', ip: req.lease.ip, pairs: req.pairs, resume: req.resume?.kind ?? 'none' });

    // Once the connection closed, `add` tears down at once: nothing outlives the response.
    subscription.add(
      this.prices.subscribe(req.pairs, req.resume).subscribe({
        next: (event) => {
          if (event.type === 'price') {
            conn.send(tickFrame(event.tick, req.kind));
            this.metrics?.sent('sse', idMs(event.tick.id));
          } else if (event.type === 'reset') {
            conn.send(resetFrame(event.reset));
            this.metrics?.sent('sse', undefined);
          }
        },
        // The price channels complete on shutdown: end with a reconnect hint.
        complete: () => conn.finish(this.config.sseRetryMs),
        error: (err: unknown) => {
          this.logger.error({ msg: 'SSE stream failed', err });
          conn.close('error');
        },
      }),
    );
  }

  /** Streams now open on this instance. */
  get openCount(): number {
    return this.connections.size;
  }

  get heartbeatActive(): boolean {
    return this.heartbeatTimer !== undefined;
  }

  stats(): SseStats {
    return { open: this.connections.size, opened: this.opened, closed: { ...this.closed } };
  }

  /** Streams normally end when the price channels complete; this catches any left behind. */
  onApplicationShutdown(): void {
    for (const conn of [...this.connections]) conn.finish(this.config.sseRetryMs);
    this.stopHeartbeat();
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
