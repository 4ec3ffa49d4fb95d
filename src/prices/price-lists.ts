import { ApiError } from '../http/api-error';
import { checkPair } from '../domain/pair';
import { parsePairList } from '../http/query';
import type { AppConfig } from '../config/app-config';
import type { PairError, PricesResponse } from '../shared/wire';
import type { PricesService } from './prices.service';

/** A list answer: 200, or 206 when some pairs have no price or are invalid. */
export type ListAnswer<T> = { status: 200 | 206; body: T };

export type LtpItem = { pair: string; amount: number };
/** `error`: the LTP service's own field; `code` and `message` as everywhere else here. */
export type LtpError = { pair: string; code: string; message: string; error: string };
export type LtpResponse = { ltp: LtpItem[]; errors?: LtpError[] };

type Deps = { config: Pick<AppConfig, 'pairs' | 'pairSet' | 'maxPairsPerRequest'>; prices: Pick<PricesService, 'latestOf'> };

/** `BTC-USD` as the LTP service writes it, `BTC/USD`. */
export const slashed = (pair: string): string => pair.replace('-', '/');

/**
 * `GET /api/prices?pairs=..` (the controller and the edge router's fast route): the latest tick of
 * each pair; 400 when no pair is valid or the request is malformed.
 */
export function pricesList(rawPairs: string | undefined, { config, prices }: Deps): ListAnswer<PricesResponse> {
  const { pairs, rejected } = parsePairList(rawPairs, config.pairSet, config.maxPairsPerRequest);
  if (pairs.length === 0) {
    throw rejected[0]?.error ?? new ApiError(400, 'INVALID_PAIR', 'no pair given');
  }
  const errors: PairError[] = rejected.map((r) => ({ pair: r.input, code: r.error.code, message: r.error.message }));
  const found = prices.latestOf(pairs);
  for (const pair of found.missing) errors.push({ pair, code: 'NO_PRICE_YET', message: `no price for ${pair} yet` });
  return errors.length > 0 ? { status: 206, body: { prices: found.prices, errors } } : { status: 200, body: { prices: found.prices } };
}

/** `GET /api/v1/ltp?pair=BTC/USD,ETH/USD` (the controller and the fast route): `{ltp:[{pair:"BTC/USD", amount}]}`. */
export function ltpList(rawPair: string | undefined, { config, prices }: Deps): ListAnswer<LtpResponse> {
  const items = rawPair === undefined || rawPair.trim() === '' ? config.pairs.map(slashed) : rawPair.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length > config.maxPairsPerRequest) {
    throw new ApiError(400, 'TOO_MANY_PAIRS', `at most ${config.maxPairsPerRequest} pairs per request, got ${items.length}`);
  }
  const ltp: LtpItem[] = [];
  const errors: LtpError[] = [];
  for (const item of items) {
    const check = checkPair(item, config.pairSet);
    if (!check.ok) {
      errors.push({ pair: item, code: check.error.code, message: check.error.message, error: check.error.message });
      continue;
    }
    const tick = prices.latestOf([check.pair]).prices[0];
    if (tick) ltp.push({ pair: slashed(check.pair), amount: tick.price });
    else errors.push({ pair: item, code: 'NO_PRICE_YET', message: `no price for ${check.pair} yet`, error: `no price for ${check.pair} yet` });
  }
  if (ltp.length === 0 && errors.every((e) => e.code !== 'NO_PRICE_YET')) {
    throw new ApiError(400, errors[0]?.code === 'UNSUPPORTED_PAIR' ? 'UNSUPPORTED_PAIR' : 'INVALID_PAIR', errors[0]?.message ?? 'no pair given');
  }
  return errors.length > 0 ? { status: 206, body: { ltp, errors } } : { status: 200, body: { ltp } };
}
