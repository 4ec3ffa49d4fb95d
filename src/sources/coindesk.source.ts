import { fetchJson } from './http-fetch';
import { SourceError, type PriceSource, type SourceResult } from './price-source';
import { isRecord, ResultBuilder, unixSecondsToIso, type HttpSourceOptions } from './source-helpers';

/** Instruments an `Err` names, where CoinDesk lists those it could not find. */
function namedInstruments(err: Record<string, unknown>): Set<string> {
  const info = isRecord(err.other_info) ? err.other_info : {};
  const named = [info.instruments, info.values].flatMap((v) => (Array.isArray(v) ? v : []));
  return new Set(named.filter((v): v is string => typeof v === 'string').map((v) => v.toUpperCase()));
}

/** The index 24 hours ago, from the moving 24 h change the index gives beside its value. */
function openOf(entry: Record<string, unknown>): number | undefined {
  const { VALUE, MOVING_24_HOUR_CHANGE } = entry;
  return typeof VALUE === 'number' && typeof MOVING_24_HOUR_CHANGE === 'number' ? VALUE - MOVING_24_HOUR_CHANGE : undefined;
}

/**
 * CoinDesk (CCData) index, batched and keyed:
 * `GET /index/cc/v1/latest/tick?market=cadli&instruments=BTC-USD,ETH-USD` with
 * `Authorization: Apikey <key>` answers `{Data:{"BTC-USD":{VALUE, VALUE_LAST_UPDATE_TS}}, Err:{}}`.
 */
export class CoinDeskSource implements PriceSource {
  readonly name = 'coindesk' as const;
  readonly batches = true;

  constructor(private readonly options: HttpSourceOptions & { apiKey: string }) {}

  supports(): boolean {
    return true; // instruments are named as our pairs; an unknown one is reported by the answer
  }

  async fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    const url = `${this.options.baseUrl}/index/cc/v1/latest/tick?market=cadli&instruments=${pairs.map(encodeURIComponent).join(',')}`;
    const body = await fetchJson(this.name, url, {
      signal,
      timeoutMs: this.options.timeoutMs,
      maxBytes: this.options.maxBytes,
      headers: { authorization: `Apikey ${this.options.apiKey}` },
    });
    if (!isRecord(body)) throw new SourceError(this.name, 'bad_shape', 'the answer is not an object');
    const data = body.Data === undefined ? {} : body.Data;
    const err = body.Err === undefined ? {} : body.Err;
    if (!isRecord(data) || !isRecord(err)) throw new SourceError(this.name, 'bad_shape', '"Data" or "Err" is not an object');

    const hasError = Object.keys(err).length > 0;
    const notFound = hasError ? namedInstruments(err) : new Set<string>();
    // An error that names no instrument and leaves nothing to read is about the request (key, limits).
    if (hasError && notFound.size === 0 && !pairs.some((pair) => isRecord(data[pair]))) {
      const message = typeof err.message === 'string' ? err.message : JSON.stringify(err).slice(0, 120);
      throw new SourceError(this.name, 'upstream_error', message);
    }

    const out = new ResultBuilder(this.name);
    const strangers = Object.keys(data).filter((instrument) => !pairs.includes(instrument));
    for (const pair of pairs) {
      const entry = data[pair];
      if (entry === undefined && !notFound.has(pair) && strangers.length > 0) {
        out.fail(pair, new SourceError(this.name, 'bad_shape', `${pair}: the answer is for ${strangers.slice(0, 3).join(', ')}`));
      } else if (entry === undefined || notFound.has(pair)) out.unknown(pair, `no CADLI index for ${pair}`);
      else if (!isRecord(entry)) out.fail(pair, new SourceError(this.name, 'bad_shape', `${pair}: the entry is not an object`));
      else out.price(pair, entry.VALUE, unixSecondsToIso(entry.VALUE_LAST_UPDATE_TS), { open24h: openOf(entry) });
    }
    return out.build();
  }
}
