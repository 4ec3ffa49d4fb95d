import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import type { Lease } from '../stream/connection-registry';
import { StreamHub } from '../stream/stream-hub';
import type { SubscribeCommand } from '../stream/subscribe-request';
import type { FrameKind } from './sse-frames';
import { SseSink, type SseResponse } from './sse-sink';

export type SseStreamRequest = {
  command: SubscribeCommand;
  kind: FrameKind;
  /** The registry slot; released when the stream ends, whatever ends it. */
  lease: Lease;
  /** For the stream's log lines (X-Request-Id, or one made up). */
  requestId?: string;
};

/**
 * Runs SSE streams on raw responses: each is a StreamHub subscriber with an SseSink, and gets
 * heartbeats from one timer for all streams.
 */
@Injectable()
export class SseService implements OnApplicationShutdown {
  private readonly logger = new Logger(SseService.name);
  private readonly sinks = new Set<SseSink>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly onGone = (sink: SseSink): void => this.gone(sink);

  constructor(
    private readonly hub: StreamHub,
    private readonly config: AppConfig,
  ) {}

  /** Starts a stream on a response whose request was already validated and leased. */
  stream(res: SseResponse, req: SseStreamRequest): void {
    const sink = new SseSink(res, req.kind, this.config.sseRetryMs, this.onGone);
    this.sinks.add(sink);
    this.startHeartbeat();
    sink.open();
    const sub = this.hub.open(sink, req.lease, { requestId: req.requestId });
    const { pairs, resume, conflateMs, delta } = req.command;
    sub.useDeltas(delta);
    this.logger.debug({ msg: 'stream opened', transport: 'sse', requestId: req.requestId, ip: req.lease.ip, pairs, resume: resume?.kind ?? 'none', conflateMs });
    sub.subscribe(pairs, resume, conflateMs, {
      ready: () => sink.joined(),
      failed: (err) => {
        this.logger.error({ msg: 'SSE stream failed to resume', requestId: req.requestId, err });
        sub.end('error');
      },
    });
  }

  /** Streams now open on this instance. */
  get openCount(): number {
    return this.sinks.size;
  }

  get heartbeatActive(): boolean {
    return this.heartbeatTimer !== undefined;
  }

  onApplicationShutdown(): void {
    this.stopHeartbeat();
  }

  private gone(sink: SseSink): void {
    this.sinks.delete(sink);
    if (this.sinks.size === 0) this.stopHeartbeat();
  }

  // One timer for every stream: thousands of streams cost one timer, not thousands.
  private startHeartbeat(): void {
    if (this.heartbeatTimer) return;
    this.heartbeatTimer = setInterval(() => {
      for (const sink of this.sinks) sink.heartbeat();
    }, this.config.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (!this.heartbeatTimer) return;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
