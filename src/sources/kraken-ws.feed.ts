import { splitPair } from '../domain/pair';
import type { Quote } from './price-source';
import { isRecord, readOptional, readTicker } from './source-helpers';
import { WsPushFeed, type FrameMeaning } from './push-feed';

/** Kraken WS v2 names pairs `BTC/USD` (v2 uses BTC, not XBT). */
export const krakenWsSymbol = (pair: string): string => {
  const { base, quote } = splitPair(pair);
  return `${base}/${quote}`;
};
const pairOf = (symbol: unknown): string | undefined => (typeof symbol === 'string' && /^[A-Z0-9]+\/[A-Z0-9]+$/.test(symbol) ? symbol.replace('/', '-') : undefined);

const isoOf = (raw: unknown): string | undefined => {
  if (typeof raw !== 'string') return undefined;
  const ms = Date.parse(raw);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
};

/**
 * What a Kraken WS v2 frame means: `status` and `heartbeat` keep the feed alive; a
 * `subscribe` answer acknowledges or refuses a symbol; a `ticker` snapshot or update carries
 * `last`, `bid`, `ask`, 24 h `high`/`low`/`volume`/`change` and the exchange's `timestamp`.
 * Each entry is mapped by its own `symbol` (a symbol not asked for is ignored).
 */
export function krakenFrame(frame: unknown, asked: ReadonlySet<string>): FrameMeaning {
  if (!isRecord(frame)) return { kind: 'garbage', detail: 'not an object' };
  if (frame.channel === 'heartbeat' || frame.channel === 'status' || frame.method === 'pong') return { kind: 'alive' };
  if (frame.method === 'subscribe') {
    const symbol = isRecord(frame.result) ? frame.result.symbol : frame.symbol;
    const pair = pairOf(symbol);
    if (!pair) return { kind: 'ignored' };
    if (frame.success === true) return { kind: 'acked', pairs: [pair] };
    return { kind: 'refused', pairs: [pair], message: typeof frame.error === 'string' ? frame.error : 'subscription refused' };
  }
  if (frame.channel === 'ticker') {
    if (!Array.isArray(frame.data)) return { kind: 'garbage', detail: 'a ticker frame without a data array' };
    const quotes: Quote[] = [];
    for (const entry of frame.data) {
      if (!isRecord(entry)) return { kind: 'garbage', detail: 'a ticker entry that is not an object' };
      const pair = pairOf(entry.symbol);
      if (!pair || !asked.has(pair)) continue;
      const price = readOptional(entry.last);
      if (price === undefined) return { kind: 'garbage', detail: `${pair}: "last" is not a price` };
      const change = typeof entry.change === 'number' ? entry.change : undefined;
      const sourceTimestamp = isoOf(entry.timestamp);
      quotes.push({
        pair,
        price,
        ...(sourceTimestamp !== undefined && { sourceTimestamp }),
        ...readTicker({ bid: entry.bid, ask: entry.ask, high24h: entry.high, low24h: entry.low, volume24h: entry.volume, open24h: change === undefined ? undefined : price - change }),
      });
    }
    return quotes.length > 0 ? { kind: 'quotes', quotes } : { kind: 'ignored' };
  }
  if (typeof frame.channel === 'string' || typeof frame.method === 'string') return { kind: 'ignored' };
  return { kind: 'garbage', detail: 'neither a channel nor a method frame' };
}

/** Kraken WebSocket v2, `ticker` channel (KRAKEN_WS_URL, default `wss://ws.kraken.com/v2`). */
export class KrakenWsFeed extends WsPushFeed {
  readonly name = 'kraken' as const;
  private asked = new Set<string>();

  protected subscribeMessage(pairs: readonly string[]): unknown {
    this.asked = new Set(pairs);
    return { method: 'subscribe', params: { channel: 'ticker', symbol: pairs.map(krakenWsSymbol) } };
  }

  protected meaning(frame: unknown): FrameMeaning {
    return krakenFrame(frame, this.asked);
  }
}
