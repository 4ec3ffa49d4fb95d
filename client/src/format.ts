/** Display formatting. `locale` and `timeZone` are parameters so that tests are deterministic. */

const CURRENCIES = new Set(['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD']);

/**
 * Decimals from the price's magnitude, about what the exchanges quote: cents from 100 up
 * (BTC, ETH, SOL), three below 100, four below 10, four significant figures below 1.
 */
export function fractionDigits(price: number): number {
  if (!(price > 0) || !Number.isFinite(price)) return 2;
  if (price >= 100) return 2;
  if (price >= 10) return 3;
  if (price >= 1) return 4;
  return Math.min(12, Math.max(4, 3 - Math.floor(Math.log10(price))));
}

export function formatPrice(price: number, pair: string, locale?: string): string {
  const quote = pair.split('-')[1] ?? '';
  const digits = fractionDigits(price);
  const options: Intl.NumberFormatOptions = { minimumFractionDigits: digits, maximumFractionDigits: digits };
  if (CURRENCIES.has(quote)) return new Intl.NumberFormat(locale, { ...options, style: 'currency', currency: quote }).format(price);
  return `${new Intl.NumberFormat(locale, options).format(price)} ${quote}`.trim();
}

export type Direction = 'up' | 'down' | 'flat';

export function direction(from: number, to: number): Direction {
  return to > from ? 'up' : to < from ? 'down' : 'flat';
}

/** `+1.23%`, `−0.05%`, `0.00%`: the change from `from` to `to`, with a real minus sign. */
export function formatChange(from: number, to: number, locale?: string): string {
  const pct = from > 0 ? ((to - from) / from) * 100 : 0;
  const text = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(Math.abs(pct));
  const rounded = Number(Math.abs(pct).toFixed(2));
  const sign = rounded === 0 ? '' : pct > 0 ? '+' : '\u2212';
  return `${sign}${text}%`;
}

/** How long ago, coarse enough to read at a glance: `just now`, `5 s ago`, `3 min ago`, `2 h ago`. */
export function formatAge(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 1) return 'just now';
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  return `${Math.floor(min / 60)} h ago`;
}

/** A wall-clock time with seconds, e.g. `21:00:03`. */
export function formatClock(iso: string, locale?: string, timeZone?: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  return new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false, timeZone }).format(ms);
}

/** `1.5 s`, `12 s`: a reconnect delay. */
export function formatDelay(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
