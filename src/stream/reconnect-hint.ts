/**
 * The reconnect hint of a stream ended by a shutdown (SSE `retry:`, the WebSocket close reason's
 * `retry=`, the Socket.IO notice's `retryMs`): a delay of its own, uniform in 0..`spreadMs`
 * (SHUTDOWN_RETRY_SPREAD_MS), so that the subscribers of an instance that stops come back spread
 * over that time instead of all in the same few milliseconds ("full jitter"). `random` returns [0, 1).
 */
export function reconnectHint(spreadMs: number, random: () => number = Math.random): number {
  const drawn = random();
  const r = Number.isFinite(drawn) ? Math.min(Math.max(drawn, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(r * (Math.max(0, Math.floor(spreadMs)) + 1));
}
