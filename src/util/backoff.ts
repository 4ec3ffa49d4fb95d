/** How a delay grows with the attempts: from `baseMs`, doubling, never past `maxMs`. */
export type BackoffPolicy = {
  baseMs: number;
  maxMs: number;
  /**
   * The share of the delay that is random: the delay is drawn from [(1 − jitter)·d, d], so that
   * instances and sources drift apart rather than retry in step. 0: exactly d. Default 0.5.
   */
  jitter?: number;
  /** In [0, 1): picks the jitter (injected by specs). */
  random?: () => number;
};

/**
 * The one exponential backoff with jitter of the service (circuit breakers, push feeds, Redis
 * reconnects, worker restarts): the delay before retry `attempt` (1 for the first retry) is
 * `baseMs · 2^(attempt − 1)`, capped at `maxMs`, with its jitter.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const { baseMs, maxMs, jitter = 0.5, random = Math.random } = policy;
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return Math.round(exp * (1 - jitter * random()));
}
