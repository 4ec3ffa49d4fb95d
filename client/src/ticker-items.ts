import type { Tick } from '@price-stream/client';
import { formatChange, formatPrice } from './format';

/** One figure of a card's ticker line; `field` names it for styling and tests. */
export type TickerItem = { field: 'bid' | 'ask' | 'spread' | 'change24h' | 'high24h' | 'low24h' | 'volume24h'; label: string; text: string };

/**
 * The ticker figures a tick carries, in reading order. A figure the tick lacks is left out (no
 * empty box); the spread needs both bid and ask, the 24 h change needs open24h.
 */
export function tickerItems(tick: Tick, locale?: string): TickerItem[] {
  const items: TickerItem[] = [];
  const price = (v: number): string => formatPrice(v, tick.pair, locale);
  if (tick.bid !== undefined) items.push({ field: 'bid', label: 'Bid', text: price(tick.bid) });
  if (tick.ask !== undefined) items.push({ field: 'ask', label: 'Ask', text: price(tick.ask) });
  if (tick.bid !== undefined && tick.ask !== undefined && tick.ask >= tick.bid) {
    const spread = tick.ask - tick.bid;
    const pct = new Intl.NumberFormat(locale, { maximumFractionDigits: 3 }).format((spread / tick.ask) * 100);
    items.push({ field: 'spread', label: 'Spread', text: `${spread === 0 ? price(0) : price(spread)} (${pct}%)` });
  }
  if (tick.open24h !== undefined) items.push({ field: 'change24h', label: '24 h', text: formatChange(tick.open24h, tick.price, locale) });
  if (tick.high24h !== undefined) items.push({ field: 'high24h', label: 'High', text: price(tick.high24h) });
  if (tick.low24h !== undefined) items.push({ field: 'low24h', label: 'Low', text: price(tick.low24h) });
  if (tick.volume24h !== undefined) {
    const base = tick.pair.split('-')[0] ?? '';
    items.push({ field: 'volume24h', label: 'Vol', text: `${new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(tick.volume24h)} ${base}`.trim() });
  }
  return items;
}
