import type { AddressInfo } from 'net';
import { WebSocket, WebSocketServer } from 'ws';
import { readFixture } from './fixtures';

export type PushExchange = 'kraken' | 'coinbase';

/**
 * How a fake feed misbehaves:
 * - `stall`: sends nothing more (no frames, heartbeats or acks), the connection stays open;
 * - `garbage`: every frame it would send is `{not json`;
 * - `subscription_error`: refuses every subscription (Kraken `success:false`, Coinbase `error`);
 * - `wrong_symbol`: pushes its trades under another pair's symbol (ETH/USD, 3000.5);
 * - `no_ack`: takes subscriptions without a word (no acknowledgement, refusal or snapshot), but
 *   keeps sending heartbeats and pushes trades to them.
 * `drop()` cuts every connection at once (the feed must reconnect and resubscribe); `huge()`
 * sends a frame of any size, `flood()` trades at any rate, `pushUnasked()` a ticker for a pair
 * nobody subscribed to.
 */
export type PushFault = 'stall' | 'garbage' | 'subscription_error' | 'wrong_symbol' | 'no_ack';

type Json = Record<string, unknown>;

const frames = (name: string): Json[] =>
  readFixture(name)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Json);

/** The fixture frames each answer is built from, so the fakes speak the exchanges' shapes. */
const KRAKEN = (() => {
  const [status, acked, refused, snapshot, heartbeat, update] = frames('kraken_ws_v2_frames.jsonl');
  return { status, acked, refused, snapshot, heartbeat, update };
})();
const COINBASE = (() => {
  const [subscriptions, ticker] = frames('coinbase_exchange_ws.jsonl');
  return { subscriptions, ticker };
})();

const WRONG = { pair: 'ETH-USD', price: 3000.5 };
const krakenSymbol = (pair: string): string => pair.replace('-', '/');

/**
 * A fake Kraken WS v2 or Coinbase Exchange feed on 127.0.0.1 (random port): acknowledges
 * ticker subscriptions for the pairs it has prices for (refuses others), sends a snapshot,
 * heartbeats every `heartbeatMs`, and a ticker update for each `push`. Frames are the
 * fixtures' with symbol, prices and time replaced.
 */
export class FakePushServer {
  private readonly subscriptions = new Map<WebSocket, Set<string>>();
  private fault: PushFault | null = null;
  private accepted = 0;
  /** The close code of each connection that ended (1009: the client found a frame too large). */
  readonly closeCodes: number[] = [];
  private readonly heartbeat: NodeJS.Timeout;
  /** The price of each pair the feed serves (subscriptions to other pairs are refused). */
  readonly prices = new Map<string, number>();

  private constructor(
    private readonly wss: WebSocketServer,
    readonly exchange: PushExchange,
    readonly url: string,
    heartbeatMs: number,
  ) {
    this.heartbeat = setInterval(() => this.beat(), heartbeatMs);
    wss.on('connection', (socket) => this.onConnection(socket));
  }

  static async start(exchange: PushExchange, options: { prices?: Record<string, number>; heartbeatMs?: number } = {}): Promise<FakePushServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const { port } = wss.address() as AddressInfo;
    const fake = new FakePushServer(wss, exchange, `ws://127.0.0.1:${port}`, options.heartbeatMs ?? 100);
    for (const [pair, price] of Object.entries(options.prices ?? { 'BTC-USD': 97000.5, 'ETH-USD': 3500.25 })) fake.prices.set(pair, price);
    return fake;
  }

  /** The env variable that points the app's feed at this fake. */
  env(): Record<string, string> {
    return this.exchange === 'kraken' ? { KRAKEN_WS_URL: this.url } : { COINBASE_WS_URL: this.url };
  }

  /** Connections accepted so far (a reconnect adds one). */
  get connections(): number {
    return this.accepted;
  }

  /** The pairs some open connection is subscribed to. */
  subscribed(): string[] {
    return [...new Set([...this.subscriptions.values()].flatMap((s) => [...s]))];
  }

  fail(fault: PushFault): void {
    this.fault = fault;
  }

  recover(): void {
    this.fault = null;
  }

  /** A trade: sends a ticker update with this price (and `time`) to every subscriber of the pair. */
  push(pair: string, price: number, time = new Date()): void {
    this.prices.set(pair, price);
    for (const [socket, pairs] of this.subscriptions) {
      if (!pairs.has(pair)) continue;
      const shown = this.fault === 'wrong_symbol' ? WRONG : { pair, price };
      this.send(socket, this.tickerFrame(shown.pair, shown.price, time, 'update'));
    }
  }

  /** A ticker for a pair, sent on every open connection whether or not it subscribed to the pair. */
  pushUnasked(pair: string, price: number, time = new Date()): void {
    for (const socket of this.subscriptions.keys()) this.send(socket, this.tickerFrame(pair, price, time, 'update'));
  }

  /** A well-formed ticker frame of the pair padded to `bytes` (JSON), sent to every open connection. */
  huge(pair: string, bytes: number): void {
    const frame = this.tickerFrame(pair, this.prices.get(pair) ?? 1, new Date(), 'update');
    const text = JSON.stringify({ ...frame, padding: '' });
    const padded = JSON.stringify({ ...frame, padding: 'x'.repeat(Math.max(0, bytes - text.length)) });
    for (const socket of this.subscriptions.keys()) if (socket.readyState === WebSocket.OPEN) socket.send(padded);
  }

  /**
   * Trades of the pair at `perSecond` for `ms`, each price one cent above the last, sent in
   * batches every 10 ms (written in one go, as a busy exchange's frames arrive). Resolves with
   * how many were sent to each subscriber and the last price.
   */
  async flood(pair: string, options: { perSecond: number; ms: number; from: number }): Promise<{ sent: number; last: number }> {
    const started = Date.now();
    let sent = 0;
    let price = options.from;
    while (Date.now() - started < options.ms) {
      const due = Math.floor(((Date.now() - started) / 1000) * options.perSecond);
      for (; sent < due; sent++) {
        price = Math.round((price + 0.01) * 100) / 100;
        this.push(pair, price);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { sent, last: price };
  }

  /** Cuts every connection. */
  drop(): void {
    for (const socket of this.subscriptions.keys()) socket.terminate();
    this.subscriptions.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.drop();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(socket: WebSocket): void {
    this.accepted++;
    this.subscriptions.set(socket, new Set());
    socket.on('close', (code) => {
      this.closeCodes.push(code);
      this.subscriptions.delete(socket);
    });
    socket.on('error', () => undefined);
    if (this.exchange === 'kraken') this.send(socket, KRAKEN.status);
    socket.on('message', (data) => {
      let msg: Json;
      try {
        msg = JSON.parse(data.toString()) as Json;
      } catch {
        return;
      }
      if (this.exchange === 'kraken') this.onKrakenSubscribe(socket, msg);
      else this.onCoinbaseSubscribe(socket, msg);
    });
  }

  private onKrakenSubscribe(socket: WebSocket, msg: Json): void {
    const params = msg.params as { channel?: string; symbol?: string[] } | undefined;
    if (msg.method !== 'subscribe' || params?.channel !== 'ticker') return;
    for (const symbol of params.symbol ?? []) {
      const pair = symbol.replace('/', '-');
      if (this.fault === 'no_ack') {
        this.subscriptions.get(socket)?.add(pair);
        continue;
      }
      if (this.fault === 'subscription_error' || !this.prices.has(pair)) {
        this.send(socket, { ...KRAKEN.refused, symbol, error: `Currency pair not supported ${symbol}` });
        continue;
      }
      this.subscriptions.get(socket)?.add(pair);
      this.send(socket, { ...KRAKEN.acked, result: { ...(KRAKEN.acked.result as Json), symbol } });
      this.send(socket, this.tickerFrame(pair, this.prices.get(pair) ?? 0, new Date(), 'snapshot'));
    }
  }

  private onCoinbaseSubscribe(socket: WebSocket, msg: Json): void {
    if (msg.type !== 'subscribe' || !Array.isArray(msg.product_ids)) return;
    const asked = msg.product_ids.filter((p): p is string => typeof p === 'string');
    if (this.fault === 'no_ack') {
      for (const pair of asked) this.subscriptions.get(socket)?.add(pair);
      return;
    }
    const refused = asked.filter((p) => this.fault === 'subscription_error' || !this.prices.has(p));
    if (refused.length > 0) {
      this.send(socket, { type: 'error', message: 'Failed to subscribe', reason: `${refused[0]} is not a valid product` });
      return;
    }
    for (const pair of asked) this.subscriptions.get(socket)?.add(pair);
    const [channel] = COINBASE.subscriptions.channels as Json[];
    this.send(socket, { ...COINBASE.subscriptions, channels: [{ ...channel, product_ids: asked }, { name: 'heartbeat', product_ids: asked }] });
    for (const pair of asked) this.send(socket, this.tickerFrame(pair, this.prices.get(pair) ?? 0, new Date(), 'snapshot'));
  }

  private tickerFrame(pair: string, price: number, time: Date, type: 'snapshot' | 'update'): Json {
    if (this.exchange === 'coinbase') {
      return { ...COINBASE.ticker, product_id: pair, price: String(price), best_bid: String(price), best_ask: String(price + 0.01), time: time.toISOString() };
    }
    const template = type === 'snapshot' ? KRAKEN.snapshot : KRAKEN.update;
    const [entry] = template.data as Json[];
    return { ...template, data: [{ ...entry, symbol: krakenSymbol(pair), last: price, bid: price - 0.1, ask: price, timestamp: time.toISOString() }] };
  }

  private beat(): void {
    for (const [socket, pairs] of this.subscriptions) {
      if (this.exchange === 'kraken') this.send(socket, KRAKEN.heartbeat);
      else for (const pair of pairs) this.send(socket, { type: 'heartbeat', sequence: 1, last_trade_id: 1, product_id: pair, time: new Date().toISOString() });
    }
  }

  private send(socket: WebSocket, frame: Json): void {
    if (this.fault === 'stall' || socket.readyState !== WebSocket.OPEN) return;
    socket.send(this.fault === 'garbage' ? '{not json' : JSON.stringify(frame));
  }
}
