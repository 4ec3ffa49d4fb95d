import { Logger } from '@nestjs/common';
import { WebSocket, type RawData } from 'ws';
import type { Quote } from './price-source';

export type PushSourceName = 'kraken' | 'coinbase';

/** What one frame of an exchange's feed means to us. */
export type FrameMeaning =
  | { kind: 'alive' } // status, heartbeat, pong
  | { kind: 'acked'; pairs: string[] }
  | { kind: 'refused'; pairs: string[]; message: string }
  | { kind: 'quotes'; quotes: Quote[] }
  | { kind: 'ignored' } // well-formed, but nothing for us (a symbol we did not ask for)
  | { kind: 'garbage'; detail: string };

export type PushFeedStatus = {
  source: PushSourceName;
  connected: boolean;
  /** The pairs the feed serves now (connected, not stale, subscribed, with a price). */
  up: string[];
  refused: string[];
  lastFrameAt: string | null;
  reconnects: number;
};

export type PushFeedOptions = {
  url: string;
  /** No frame or heartbeat for this long: the feed is not up, and the connection is replaced. */
  staleMs: number;
  /** First reconnect delay; doubles up to maxBackoffMs, with jitter. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
  random?: () => number;
};

/** What the poller needs of a push feed (a WebSocket feed below, a fake in unit specs). */
export interface PushFeed {
  readonly name: PushSourceName;
  onQuote: ((quote: Quote) => void) | undefined;
  start(pairs: readonly string[]): void;
  stop(): void;
  current(pair: string): Quote | undefined;
  status(): PushFeedStatus;
}

const JITTER_MIN = 0.5;

/**
 * One exchange's WebSocket ticker feed: connects, subscribes to the pairs, keeps the latest
 * quote of each, and reconnects with exponential backoff and jitter (resubscribing) when the
 * connection drops, stalls for `staleMs` or sends garbage. A subclass only builds the
 * subscribe message and says what a frame means. `current(pair)` is the latest quote while the
 * feed is up for that pair; the poller asks REST for the others.
 */
export abstract class WsPushFeed implements PushFeed {
  abstract readonly name: PushSourceName;
  /** Called with every quote as it arrives (the poller publishes it at once). */
  onQuote: ((quote: Quote) => void) | undefined;
  protected readonly logger = new Logger(this.constructor.name);
  private socket: WebSocket | null = null;
  private pairs: readonly string[] = [];
  private readonly latest = new Map<string, Quote>();
  private readonly acked = new Set<string>();
  private readonly refused = new Set<string>();
  private connected = false;
  private lastFrameAt: number | null = null;
  private openedAt: number | null = null;
  private failures = 0;
  private reconnects = 0;
  private running = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(protected readonly options: PushFeedOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  protected abstract subscribeMessage(pairs: readonly string[]): unknown;
  protected abstract meaning(frame: unknown): FrameMeaning;

  start(pairs: readonly string[]): void {
    if (this.running) return;
    this.running = true;
    this.pairs = pairs;
    this.connect();
    const check = Math.max(50, Math.floor(this.options.staleMs / 4));
    this.staleTimer = setInterval(() => this.checkStale(), check);
    this.staleTimer.unref();
  }

  /** Closes the connection and stops reconnecting. */
  stop(): void {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.staleTimer);
    this.drop();
  }

  /** The latest quote of the pair while the feed is up for it. */
  current(pair: string): Quote | undefined {
    return this.isUp(pair) ? this.latest.get(pair) : undefined;
  }

  isUp(pair: string): boolean {
    return (
      this.connected &&
      this.lastFrameAt !== null &&
      this.now() - this.lastFrameAt <= this.options.staleMs &&
      this.acked.has(pair) &&
      !this.refused.has(pair) &&
      this.latest.has(pair)
    );
  }

  status(): PushFeedStatus {
    return {
      source: this.name,
      connected: this.connected,
      up: this.pairs.filter((p) => this.isUp(p)),
      refused: [...this.refused],
      lastFrameAt: this.lastFrameAt === null ? null : new Date(this.lastFrameAt).toISOString(),
      reconnects: this.reconnects,
    };
  }

  private connect(): void {
    if (!this.running) return;
    const socket = new WebSocket(this.options.url, { handshakeTimeout: this.options.staleMs });
    this.socket = socket;
    socket.on('open', () => {
      if (this.socket !== socket) return;
      this.connected = true;
      this.lastFrameAt = this.now();
      this.openedAt = this.lastFrameAt;
      socket.send(JSON.stringify(this.subscribeMessage(this.pairs)));
    });
    socket.on('message', (data: RawData) => {
      if (this.socket === socket) this.onFrame(data);
    });
    socket.on('error', (err) => this.logger.debug({ msg: 'push feed error', source: this.name, error: err.message }));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.lost('the connection closed');
    });
  }

  private onFrame(data: RawData): void {
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString()) as unknown;
    } catch {
      return this.lost('a frame that is not JSON');
    }
    const meaning = this.meaning(frame);
    if (meaning.kind === 'garbage') return this.lost(`a garbled frame: ${meaning.detail}`);
    this.lastFrameAt = this.now();
    switch (meaning.kind) {
      case 'acked':
        for (const pair of meaning.pairs) {
          this.acked.add(pair);
          this.refused.delete(pair);
        }
        this.failures = 0;
        break;
      case 'refused':
        for (const pair of meaning.pairs) {
          this.refused.add(pair);
          this.latest.delete(pair);
        }
        this.logger.warn({ msg: 'push feed refused the subscription; REST serves these pairs', source: this.name, pairs: meaning.pairs, error: meaning.message });
        break;
      case 'quotes':
        for (const quote of meaning.quotes) {
          if (!this.pairs.includes(quote.pair) || this.refused.has(quote.pair)) continue;
          this.latest.set(quote.pair, quote);
          this.onQuote?.(quote);
        }
        break;
      case 'alive':
      case 'ignored':
        break;
    }
  }

  private checkStale(): void {
    if (!this.connected || this.lastFrameAt === null || this.openedAt === null) return;
    const now = this.now();
    if (now - this.lastFrameAt > this.options.staleMs) return this.lost(`no frame or heartbeat for ${this.options.staleMs} ms`);
    // A feed that is alive but never answered the subscription serves nothing: subscribe again.
    const unanswered = this.pairs.filter((p) => !this.acked.has(p) && !this.refused.has(p));
    if (unanswered.length > 0 && now - this.openedAt > this.options.staleMs) this.lost(`no answer to the subscription of ${unanswered.join(', ')}`);
  }

  /** The feed is not up: forget its state, and reconnect after a backoff. */
  private lost(reason: string): void {
    const wasConnected = this.connected;
    this.drop();
    if (!this.running) return;
    this.failures++;
    const base = this.options.baseBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const exponential = Math.min(max, base * 2 ** Math.min(this.failures - 1, 20));
    const delay = Math.round(exponential * (JITTER_MIN + (1 - JITTER_MIN) * this.random()));
    const fields = { source: this.name, reason, reconnectInMs: delay };
    if (wasConnected) this.logger.warn({ msg: 'push feed lost; REST serves meanwhile', ...fields });
    else this.logger.debug({ msg: 'push feed still down', ...fields });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnects++;
      this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = null;
    this.connected = false;
    this.openedAt = null;
    this.acked.clear();
    this.latest.clear();
    if (socket) {
      socket.removeAllListeners('message');
      socket.on('error', () => undefined);
      socket.terminate();
    }
  }
}
