import { splitPair } from '../domain/pair';
import { fetchJson } from './http-fetch';
import { SourceError, type PriceSource, type SourceResult } from './price-source';
import { fetchEach, isRecord, ResultBuilder, type HttpSourceOptions } from './source-helpers';

/**
 * Coinbase spot price, one request per pair: `GET /v2/prices/BTC-USD/spot` answers
 * `{data:{amount:"83894.035", base:"BTC", currency:"USD"}}`. No time is given.
 */
export class CoinbaseSource implements PriceSource {
  readonly name = 'coinbase' as const;
  readonly batches = false;

  constructor(private readonly options: HttpSourceOptions) {}

  supports(): boolean {
    return true; // Coinbase names pairs as we do; an unknown one answers 404
  }

  fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    return fetchEach(pairs, (pair) => this.fetchOne(pair, signal));
  }

  private async fetchOne(pair: string, signal: AbortSignal): Promise<SourceResult> {
    const out = new ResultBuilder(this.name);
    const url = `${this.options.baseUrl}/v2/prices/${encodeURIComponent(pair)}/spot`;
    let body: unknown;
    try {
      body = await fetchJson(this.name, url, { signal, timeoutMs: this.options.timeoutMs, maxBytes: this.options.maxBytes });
    } catch (err) {
      // Coinbase answers an unknown currency with 400 or 404: a fact about this pair, not an outage.
      if (err instanceof SourceError && (err.status === 400 || err.status === 404)) {
        out.unknown(pair, `Coinbase answered HTTP ${err.status}`);
        return out.build();
      }
      throw err;
    }
    if (!isRecord(body) || !isRecord(body.data)) throw new SourceError(this.name, 'bad_shape', 'no "data" object in the answer');

    const { base, quote } = splitPair(pair);
    const data = body.data;
    if (typeof data.base !== 'string' || typeof data.currency !== 'string') {
      out.fail(pair, new SourceError(this.name, 'bad_shape', `${pair}: no "base"/"currency" in the answer`));
    } else if (data.base.toUpperCase() !== base || data.currency.toUpperCase() !== quote) {
      out.fail(pair, new SourceError(this.name, 'bad_shape', `${pair}: the answer is for ${data.base}-${data.currency}`));
    } else {
      out.price(pair, data.amount);
    }
    return out.build();
  }
}
