/**
 * The least reconnect hint. A browser's EventSource keeps the last `retry:` for every attempt
 * until one succeeds, with no backoff of its own: a hint of 0 would have it retry in a tight loop
 * for as long as the service is down.
 */
export const RECONNECT_HINT_FLOOR_MS = 250;

/**
 * The reconnect hint of a stream ended by a shutdown (SSE `retry:`, the WebSocket close reason's
 * `retry=`, the Socket.IO notice's `retryMs`): a delay of its own, uniform in
 * RECONNECT_HINT_FLOOR_MS..RECONNECT_HINT_FLOOR_MS + `spreadMs` (SHUTDOWN_RETRY_SPREAD_MS), so
 * that the subscribers of an instance that stops come back spread over that time instead of all
 * in the same few milliseconds. `random` returns [0, 1).
 */
export function reconnectHint(spreadMs: number, random: () => number = Math.random): number {
  const drawn = random();
  const r = Number.isFinite(drawn) ? Math.min(Math.max(drawn, 0), 1 - Number.EPSILON) : 0;
  return RECONNECT_HINT_FLOOR_MS + Math.floor(r * (Math.max(0, Math.floor(spreadMs)) + 1));
}
