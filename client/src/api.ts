import type { CandleInterval, CandlesResponse, ErrorBody, HistoryResponse, PairsResponse } from '../../src/shared/wire';

export class ApiRequestError extends Error {}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' }, signal });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as Partial<ErrorBody> | null;
    throw new ApiRequestError(`${path}: ${res.status} ${body?.code ?? ''} ${body?.message ?? ''}`.trim());
  }
  return (await res.json()) as T;
}

export const fetchPairs = (signal?: AbortSignal): Promise<PairsResponse> => getJson<PairsResponse>('/api/pairs', signal);

export const fetchHistory = (pair: string, limit = 1000, signal?: AbortSignal): Promise<HistoryResponse> =>
  getJson<HistoryResponse>(`/api/prices/${encodeURIComponent(pair)}/history?limit=${limit}`, signal);

export const fetchCandles = (pair: string, interval: CandleInterval, limit: number, signal?: AbortSignal): Promise<CandlesResponse> =>
  getJson<CandlesResponse>(`/api/prices/${encodeURIComponent(pair)}/candles?interval=${interval}&limit=${limit}`, signal);

/** `limit` candles from `fromMs` forward. */
export const fetchCandlesFrom = (pair: string, interval: CandleInterval, fromMs: number, limit: number, signal?: AbortSignal): Promise<CandlesResponse> =>
  getJson<CandlesResponse>(`/api/prices/${encodeURIComponent(pair)}/candles?interval=${interval}&from=${Math.floor(fromMs)}&limit=${limit}`, signal);
