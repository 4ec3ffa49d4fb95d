import { LEGACY_PAIR, SSE_PATH } from '../shared/wire';
import type { FrameKind } from './sse-frames';

/** What a stream route serves: its frame kind, and the pair when the request names none. */
export type SseRoute = { kind: FrameKind; defaultPair?: string };

/** The legacy routes (Bitcoin Price Streamer): named `price` events, and unnamed ones for `onmessage`; both with `symbol` and `name`, BTC-USD unless `pairs` says otherwise. */
export const LEGACY_PRICE_STREAM_PATH = '/api/price/stream';
export const LEGACY_MESSAGE_STREAM_PATH = '/stream';

/** Every SSE route and what it serves: the one list the entry, the controller, logging and headers use. */
export const SSE_ROUTE_TABLE: ReadonlyMap<string, SseRoute> = new Map<string, SseRoute>([
  [SSE_PATH, { kind: 'price' }],
  [LEGACY_PRICE_STREAM_PATH, { kind: 'legacy', defaultPair: LEGACY_PAIR }],
  [LEGACY_MESSAGE_STREAM_PATH, { kind: 'message', defaultPair: LEGACY_PAIR }],
]);

export const SSE_ROUTES: readonly string[] = [...SSE_ROUTE_TABLE.keys()];
