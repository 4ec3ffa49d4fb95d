import { ApiError } from '../http/api-error';
import { MAX_PAIR_LENGTH, normalizePair } from './pair-name';

export { MAX_PAIR_LENGTH, normalizePair };

export function splitPair(pair: string): { base: string; quote: string } {
  const [base, quote] = pair.split('-');
  return { base, quote };
}

export type PairCheck = { ok: true; pair: string } | { ok: false; input: string; error: ApiError };

/** Checks one pair against the configured set: INVALID_PAIR when malformed, UNSUPPORTED_PAIR when not configured. */
export function checkPair(raw: string, configured: ReadonlySet<string>, unsupportedStatus = 400): PairCheck {
  const pair = normalizePair(raw);
  if (!pair) {
    return { ok: false, input: raw, error: new ApiError(400, 'INVALID_PAIR', `"${clip(raw)}" is not a pair: use BASE-QUOTE, e.g. BTC-USD`) };
  }
  if (!configured.has(pair)) {
    return { ok: false, input: raw, error: new ApiError(unsupportedStatus, 'UNSUPPORTED_PAIR', `${pair} is not served here; served pairs: ${[...configured].join(', ')}`) };
  }
  return { ok: true, pair };
}

/** Keeps what is echoed back in an error message short and printable. */
export function clip(raw: string, max = 32): string {
  // eslint-disable-next-line no-control-regex
  const printable = raw.replace(/[\u0000-\u001f\u007f]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}
