import { Logger } from '@nestjs/common';
import { WebSocket, type RawData } from 'ws';
import { backoffDelay } from '../util/backoff';
import { TurnBatcher } from '../util/turn-batcher';
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

/** What a frame was, as counted by `price_stream_push_frames_total` (a bounded set). */
export const FRAME_KINDS = ['quote', 'alive', 'ack', 'refused', 'ignored', 'garbage'] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

/** Why a connection was replaced, as counted by `price_stream_push_reconnects_total` (a bounded set). */
export const LOST_REASONS = ['closed', 'too_large', 'garbage', 'stale', 'ack_timeout'] as const;
export type LostReason = (typeof LOST_REASONS)[number];

/**
 * Where a feed is: `disconnected` (no open connection, or not started), `connected` (open, some
 * pair's subscription not answered yet), `subscribed` (every pair acknowledged or refused),
 * `stale` (open, but no frame or heartbeat for PUSH_STALE_MS).
 */
export const FEED_STATES = ['disconnected', 'connected', 'subscribed', 'stale'] as const;
export type FeedState = (typeof FEED_STATES)[number];

/** What a feed tells its observer (the metrics) as it happens; the rest is read from `status()`. */
export type PushFeedObserver = { frame(kind: FrameKind): void; lost(reason: LostReason): void };

/**
 * The largest frame a feed takes (the `ws` client's `maxPayload`): a ticker frame is well under
 * 1 KiB, a subscription answer a few. A larger one closes the connection (1009) before it is
 * read, and the feed reconnects with backoff.
 */
export const PUSH_MAX_FRAME_BYTES = 1024 * 1024;

export type PushFeedStatus = {
  source: PushSourceName;
  /** Started and not stopped: this process holds the feed (the leader, or the only instance). */
  running: boolean;
  state: FeedState;
  connected: boolean;
  /** The pairs the feed serves now (connected, not stale, subscribed, with a price). */
  up: string[];
  refused: string[];
  lastFrameAt: string | null;
  /** When the last quote of a subscribed pair arrived (our clock). */
  lastQuoteAt: string | null;
  reconnects: number;
};

export type PushFeedOptions = {
  url: string;
  /** No frame or heartbeat for this long: the feed is not up, and the connection is replaced. */
  staleMs: number;
  /** A subscription neither acknowledged nor refused for this long: the connection is replaced (default staleMs). */
  ackTimeoutMs?: number;
  /** The largest frame taken (default PUSH_MAX_FRAME_BYTES). */
  maxFrameBytes?: number;
  /** First reconnect delay; doubles up to maxBackoffMs, with jitter. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
  random?: () => number;
};

/** Where a feed hands its quotes: the latest of each pair, once per event-loop turn (the ingest policy). */
export type QuoteSink = (quote: Quote) => void;

/** What the ingest needs of a push feed (a WebSocket feed below, a fake in unit specs). */
export interface PushFeed {
  readonly name: PushSourceName;
  observer: PushFeedObserver | undefined;
  /** Connects and subscribes to the pairs; quotes go to `sink` until `stop()`. */
  start(pairs: readonly string[], sink: QuoteSink): void;
  stop(): void;
  current(pair: string): Quote | undefined;
  status(): PushFeedStatus;
}

/**
 * One exchange's WebSocket ticker feed: connects, subscribes to the pairs, keeps the latest
 * quote of each, and reconnects with exponential backoff and jitter (resubscribing) when the
 * connection drops, stalls for `staleMs`, leaves a subscription unanswered for `ackTimeoutMs`,
 * sends a frame over `maxFrameBytes` or garbage. A subclass only builds the subscribe message
 * and says what a frame means. `current(pair)` is the latest quote while the feed is up for
 * that pair; the policy asks REST for the others.
 *
 * A frame costs a parse and a map write: quotes of a pair whose subscription is not
 * acknowledged are kept but not handed on, and the sink `start` was given gets the latest quote
 * of each pair once per event-loop turn, however many frames the turn read (a flood is coalesced).
 */
export abstract class WsPushFeed implements PushFeed {
  abstract readonly name: PushSourceName;
  observer: PushFeedObserver | undefined;
  protected readonly logger = new Logger(this.constructor.name);
  private socket: WebSocket | null = null;
  private pairs: readonly string[] = [];
  private readonly latest = new Map<string, Quote>();
  private readonly acked = new Set<string>();
  private readonly refused = new Set<string>();
  private connected = false;
  private lastFrameAt: number | null = null;
  private lastQuoteAt: number | null = null;
  private openedAt: number | null = null;
  /** Where the quotes go while the feed runs. */
  private sink: QuoteSink | undefined;
  /** Pairs with a quote not handed to the sink yet, handed on when the turn ends. */
  private readonly fresh = new TurnBatcher<string>((pairs) => this.flush(pairs), { unique: true });
  private failures = 0;
  private reconnects = 0;
  private running = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(protected readonly options: PushFeedOptions) {
    this.now = options.now ?? Date.now;
  }

  protected abstract subscribeMessage(pairs: readonly string[]): unknown;
  protected abstract meaning(frame: unknown): FrameMeaning;

  start(pairs: readonly string[], sink: QuoteSink): void {
    if (this.running) return;
    this.running = true;
    this.pairs = pairs;
    this.sink = sink;
    this.connect();
    const check = Math.max(50, Math.floor(Math.min(this.options.staleMs, this.ackTimeoutMs) / 4));
    this.staleTimer = setInterval(() => this.checkStale(), check);
    this.staleTimer.unref();
  }

  /** Closes the connection and stops reconnecting. */
  stop(): void {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.staleTimer);
    this.sink = undefined;
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

  state(): FeedState {
    if (!this.running || !this.connected || this.lastFrameAt === null) return 'disconnected';
    if (this.now() - this.lastFrameAt > this.options.staleMs) return 'stale';
    const answered = this.pairs.every((p) => this.acked.has(p) || this.refused.has(p));
    return answered && this.acked.size > 0 ? 'subscribed' : 'connected';
  }

  status(): PushFeedStatus {
    return {
      source: this.name,
      running: this.running,
      state: this.state(),
      connected: this.connected,
      up: this.pairs.filter((p) => this.isUp(p)),
      refused: [...this.refused],
      lastFrameAt: this.lastFrameAt === null ? null : new Date(this.lastFrameAt).toISOString(),
      lastQuoteAt: this.lastQuoteAt === null ? null : new Date(this.lastQuoteAt).toISOString(),
      reconnects: this.reconnects,
    };
  }

  private get ackTimeoutMs(): number {
    return this.options.ackTimeoutMs ?? this.options.staleMs;
  }

  private connect(): void {
    if (!this.running) return;
    const socket = new WebSocket(this.options.url, { handshakeTimeout: this.options.staleMs, maxPayload: this.options.maxFrameBytes ?? PUSH_MAX_FRAME_BYTES });
    this.socket = socket;
    let tooLarge = false;
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
    socket.on('error', (err: Error & { code?: string }) => {
      // ws closes the connection with 1009 right after; the close then says why.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') tooLarge = true;
      this.logger.debug({ msg: 'push feed error', source: this.name, error: err.message });
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      if (tooLarge) this.lost('too_large', `a frame over ${this.options.maxFrameBytes ?? PUSH_MAX_FRAME_BYTES} bytes`);
      else this.lost('closed', 'the connection closed');
    });
  }

  private onFrame(data: RawData): void {
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString()) as unknown;
    } catch {
      this.observer?.frame('garbage');
      return this.lost('garbage', 'a frame that is not JSON');
    }
    const meaning = this.meaning(frame);
    this.observer?.frame(meaning.kind === 'quotes' ? 'quote' : meaning.kind === 'acked' ? 'ack' : meaning.kind);
    if (meaning.kind === 'garbage') return this.lost('garbage', `a garbled frame: ${meaning.detail}`);
    this.lastFrameAt = this.now();
    switch (meaning.kind) {
      case 'acked':
        for (const pair of meaning.pairs) {
          this.acked.add(pair);
          this.refused.delete(pair);
          // A quote that came ahead of its acknowledgement is handed on now.
          if (this.latest.has(pair)) this.fresh.add(pair);
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
          this.lastQuoteAt = this.lastFrameAt;
          if (this.acked.has(quote.pair)) this.fresh.add(quote.pair);
        }
        break;
      case 'alive':
      case 'ignored':
        break;
    }
  }

  /** Hands the turn's fresh pairs' latest quotes to the sink (one flush per turn, whatever the frames). */
  private flush(pairs: readonly string[]): void {
    for (const pair of pairs) {
      const quote = this.latest.get(pair);
      if (quote && this.acked.has(pair)) this.sink?.(quote);
    }
  }

  private checkStale(): void {
    if (!this.connected || this.lastFrameAt === null || this.openedAt === null) return;
    const now = this.now();
    if (now - this.lastFrameAt > this.options.staleMs) return this.lost('stale', `no frame or heartbeat for ${this.options.staleMs} ms`);
    // A feed that is alive but never answered the subscription serves nothing: subscribe again.
    const unanswered = this.pairs.filter((p) => !this.acked.has(p) && !this.refused.has(p));
    if (unanswered.length > 0 && now - this.openedAt > this.ackTimeoutMs) {
      this.lost('ack_timeout', `no answer to the subscription of ${unanswered.join(', ')} within ${this.ackTimeoutMs} ms`);
    }
  }

  /** The feed is not up: forget its state, and reconnect after a backoff. */
  private lost(reason: LostReason, detail: string): void {
    const wasConnected = this.connected;
    this.drop();
    if (!this.running) return;
    this.observer?.lost(reason);
    this.failures++;
    const delay = backoffDelay(this.failures, { baseMs: this.options.baseBackoffMs ?? 500, maxMs: this.options.maxBackoffMs ?? 30_000, random: this.options.random });
    const fields = { source: this.name, reason, detail, reconnectInMs: delay };
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
    this.fresh.clear();
    if (socket) {
      socket.removeAllListeners('message');
      socket.on('error', () => undefined);
      socket.terminate();
    }
  }
}
