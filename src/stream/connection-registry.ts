import { Injectable, Optional } from '@nestjs/common';
import { ApiError } from '../common/api-error';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';

export type Transport = 'sse' | 'socketio' | 'ws';

/** Why a stream connection ended (bounded set: used as a metrics label). */
export type DisconnectReason = 'client' | 'slow' | 'limit' | 'shutdown' | 'error';

export type Lease = { readonly transport: Transport; readonly ip: string; release(reason: DisconnectReason): void };

/**
 * Counts open stream connections of every transport against MAX_STREAM_CONNECTIONS and
 * MAX_STREAM_CONNECTIONS_PER_IP: one budget shared by SSE, Socket.IO and WebSocket.
 */
@Injectable()
export class ConnectionRegistry {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly perTransport: Record<Transport, number> = { sse: 0, socketio: 0, ws: 0 };
  private readonly listeners: ((transport: Transport, reason: DisconnectReason) => void)[] = [];

  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    metrics?.onScrape(() => {
      for (const transport of Object.keys(this.perTransport) as Transport[]) metrics.subscribers.set({ transport }, this.perTransport[transport]);
    });
    if (metrics) this.onRelease((transport, reason) => metrics.disconnected(transport, reason));
  }

  /** Takes a connection slot, or throws 429 TOO_MANY_CONNECTIONS. */
  acquire(transport: Transport, ip: string): Lease {
    if (this.total >= this.config.maxStreamConnections) {
      this.metrics?.rejected.inc({ transport, code: 'TOO_MANY_CONNECTIONS' });
      throw new ApiError(429, 'TOO_MANY_CONNECTIONS', 'the server holds as many streams as it may; try again later or elsewhere');
    }
    const mine = this.perIp.get(ip) ?? 0;
    if (mine >= this.config.maxStreamConnectionsPerIp) {
      this.metrics?.rejected.inc({ transport, code: 'TOO_MANY_CONNECTIONS' });
      throw new ApiError(429, 'TOO_MANY_CONNECTIONS', `at most ${this.config.maxStreamConnectionsPerIp} streams per client address`);
    }
    this.total++;
    this.perIp.set(ip, mine + 1);
    this.perTransport[transport]++;
    let released = false;
    return {
      transport,
      ip,
      release: (reason) => {
        if (released) return;
        released = true;
        this.total--;
        this.perTransport[transport]--;
        const left = (this.perIp.get(ip) ?? 1) - 1;
        if (left > 0) this.perIp.set(ip, left);
        else this.perIp.delete(ip);
        for (const l of this.listeners) l(transport, reason);
      },
    };
  }

  /** Called on every release (metrics). */
  onRelease(listener: (transport: Transport, reason: DisconnectReason) => void): void {
    this.listeners.push(listener);
  }

  counts(): { total: number; ips: number } & Record<Transport, number> {
    return { total: this.total, ips: this.perIp.size, ...this.perTransport };
  }
}

/**
 * The client's address: the socket's own, or the left-most `X-Forwarded-For` entry when
 * TRUST_PROXY says a proxy in front sets it (otherwise anyone could spoof it).
 */
export function clientIp(headers: Record<string, string | string[] | undefined>, remoteAddress: string | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return remoteAddress ?? 'unknown';
}
