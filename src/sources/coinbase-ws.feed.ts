import type { Quote } from './price-source';
import { isRecord, readOptional, readTicker } from './source-helpers';
import { WsPushFeed, type FrameMeaning } from './push-feed';

const isoOf = (raw: unknown): string | undefined => {
  if (typeof raw !== 'string') return undefined;
  const ms = Date.parse(raw);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
};

/**
 * What a Coinbase Exchange feed frame means: `subscriptions` acknowledges the products of the
 * `ticker` channel; `error` refuses (the products it names, or all not yet acknowledged);
 * `heartbeat` keeps the feed alive; `ticker` carries `price`, `best_bid`, `best_ask`,
 * `open_24h`, `high_24h`, `low_24h`, `volume_24h` and the exchange's `time`, for its own
 * `product_id` (one not asked for is ignored).
 */
export function coinbaseFrame(frame: unknown, asked: ReadonlySet<string>): FrameMeaning {
  if (!isRecord(frame) || typeof frame.type !== 'string') return { kind: 'garbage', detail: 'no "type"' };
  switch (frame.type) {
    case 'heartbeat':
      return { kind: 'alive' };
    case 'subscriptions': {
      const channels = Array.isArray(frame.channels) ? frame.channels.filter(isRecord) : [];
      const ticker = channels.find((c) => c.name === 'ticker');
      const ids = ticker && Array.isArray(ticker.product_ids) ? ticker.product_ids.filter((p): p is string => typeof p === 'string') : [];
      return { kind: 'acked', pairs: ids.filter((p) => asked.has(p)) };
    }
    case 'error': {
      const text = `${typeof frame.message === 'string' ? frame.message : 'error'}${typeof frame.reason === 'string' ? `: ${frame.reason}` : ''}`;
      const named = [...asked].filter((p) => text.includes(p));
      return { kind: 'refused', pairs: named.length > 0 ? named : [...asked], message: text };
    }
    case 'ticker': {
      const pair = frame.product_id;
      if (typeof pair !== 'string' || !asked.has(pair)) return { kind: 'ignored' };
      const price = readOptional(frame.price);
      if (price === undefined) return { kind: 'garbage', detail: `${pair}: "price" is not a price` };
      const sourceTimestamp = isoOf(frame.time);
      const quote: Quote = {
        pair,
        price,
        ...(sourceTimestamp !== undefined && { sourceTimestamp }),
        ...readTicker({ bid: frame.best_bid, ask: frame.best_ask, open24h: frame.open_24h, high24h: frame.high_24h, low24h: frame.low_24h, volume24h: frame.volume_24h }),
      };
      return { kind: 'quotes', quotes: [quote] };
    }
    default:
      return { kind: 'ignored' };
  }
}

/** Coinbase Exchange feed, `ticker` and `heartbeat` channels (COINBASE_WS_URL). */
export class CoinbaseWsFeed extends WsPushFeed {
  readonly name = 'coinbase' as const;
  private asked = new Set<string>();

  protected subscribeMessage(pairs: readonly string[]): unknown {
    this.asked = new Set(pairs);
    return { type: 'subscribe', product_ids: [...pairs], channels: ['ticker', 'heartbeat'] };
  }

  protected meaning(frame: unknown): FrameMeaning {
    return coinbaseFrame(frame, this.asked);
  }
}
