import { splitPair } from '../domain/pair';
import { fetchJson } from './http-fetch';
import { SourceError, type PriceSource, type SourceResult } from './price-source';
import { isRecord, ResultBuilder, unixSecondsToIso, type HttpSourceOptions } from './source-helpers';

/** CoinGecko names coins by id, not by ticker symbol; these are the common ones. */
export const COINGECKO_IDS: Readonly<Record<string, string>> = {
  BTC: 'bitcoin',
  ETH: 'ethereum',
  SOL: 'solana',
  XRP: 'ripple',
  ADA: 'cardano',
  DOGE: 'dogecoin',
  LTC: 'litecoin',
  DOT: 'polkadot',
  USDT: 'tether',
  USDC: 'usd-coin',
  BNB: 'binancecoin',
  TRX: 'tron',
  AVAX: 'avalanche-2',
  LINK: 'chainlink',
  XLM: 'stellar',
  BCH: 'bitcoin-cash',
  MATIC: 'matic-network',
  ATOM: 'cosmos',
};

/**
 * CoinGecko gives the 24 h volume in the quote currency and the 24 h change in percent: the
 * base volume and the open are derived from them and the price (so they are approximate).
 */
function dayOf(price: unknown, quoteVolume: unknown, changePct: unknown): { open24h?: number; volume24h?: number } {
  if (typeof price !== 'number' || !Number.isFinite(price) || price <= 0) return {};
  const out: { open24h?: number; volume24h?: number } = {};
  if (typeof quoteVolume === 'number' && Number.isFinite(quoteVolume)) out.volume24h = quoteVolume / price;
  if (typeof changePct === 'number' && Number.isFinite(changePct) && changePct > -100) out.open24h = price / (1 + changePct / 100);
  return out;
}

/**
 * CoinGecko simple price, batched:
 * `GET /api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd,eur&include_last_updated_at=true&include_24hr_vol=true&include_24hr_change=true`
 * answers `{bitcoin:{usd:103663, usd_24h_vol:..., usd_24h_change:1.63, last_updated_at:1747407859}}`; ids or currencies it
 * does not know are left out of the answer.
 */
export class CoinGeckoSource implements PriceSource {
  readonly name = 'coingecko' as const;
  readonly batches = true;

  constructor(private readonly options: HttpSourceOptions) {}

  supports(pair: string): boolean {
    return splitPair(pair).base in COINGECKO_IDS;
  }

  async fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    const out = new ResultBuilder(this.name);
    const asked = pairs.filter((pair) => this.supports(pair));
    for (const pair of pairs) if (!this.supports(pair)) out.unknown(pair, 'no CoinGecko id for its base');
    if (asked.length === 0) return out.build();

    const ids = [...new Set(asked.map((pair) => COINGECKO_IDS[splitPair(pair).base]))];
    const currencies = [...new Set(asked.map((pair) => splitPair(pair).quote.toLowerCase()))];
    const url =
      `${this.options.baseUrl}/api/v3/simple/price?ids=${ids.join(',')}` +
      `&vs_currencies=${currencies.join(',')}&include_last_updated_at=true&include_24hr_vol=true&include_24hr_change=true`;
    const body = await fetchJson(this.name, url, { signal, timeoutMs: this.options.timeoutMs, maxBytes: this.options.maxBytes });
    if (!isRecord(body)) throw new SourceError(this.name, 'bad_shape', 'the answer is not an object');
    if (isRecord(body.status) && 'error_code' in body.status) {
      throw new SourceError(this.name, 'upstream_error', `error ${String(body.status.error_code)}: ${String(body.status.error_message)}`);
    }

    // Ids nobody asked for: the answer is about other coins, not silence about ours.
    const strangers = Object.keys(body).filter((id) => !ids.includes(id));
    for (const pair of asked) {
      const { base, quote } = splitPair(pair);
      const entry = body[COINGECKO_IDS[base]];
      if (entry === undefined && strangers.length > 0) {
        out.fail(pair, new SourceError(this.name, 'bad_shape', `${pair}: the answer is for ${strangers.slice(0, 3).join(', ')}`));
      } else if (entry === undefined) {
        out.unknown(pair, `no entry for ${COINGECKO_IDS[base]}`);
      } else if (!isRecord(entry)) {
        out.fail(pair, new SourceError(this.name, 'bad_shape', `${pair}: the entry for ${COINGECKO_IDS[base]} is not an object`));
      } else if (!(quote.toLowerCase() in entry)) {
        out.unknown(pair, `no ${quote.toLowerCase()} price for ${COINGECKO_IDS[base]}`);
      } else {
        const vs = quote.toLowerCase();
        out.price(pair, entry[vs], unixSecondsToIso(entry.last_updated_at), dayOf(entry[vs], entry[`${vs}_24h_vol`], entry[`${vs}_24h_change`]));
      }
    }
    return out.build();
  }
}
