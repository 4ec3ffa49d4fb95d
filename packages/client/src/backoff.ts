/**
 * Exponential backoff with jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
 * `full`: anywhere in [0, cap]; spreads a thundering herd best. `equal`: in [cap/2, cap];
 * never retries at once, which suits a UI that shows the delay.
 */
export type Jitter = 'full' | 'equal';

export type BackoffPolicy = { baseMs: number; maxMs: number; jitter: Jitter };

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000, jitter: 'equal' };

/**
 * The delay before the first attempt after a stream that was up dropped: the server's own hint
 * for this stream when it gave one (it ended the stream on shutdown, each stream its own delay,
 * capped at `maxMs`), else anywhere in [0, baseMs] (full jitter): when a whole instance's
 * subscribers drop at once they come back spread over that time, not in step, and on average
 * sooner than the equal jitter of the later retries.
 */
export function firstRetryDelay(policy: BackoffPolicy, hintMs: number | undefined, random: () => number = Math.random): number {
  if (hintMs !== undefined && Number.isFinite(hintMs) && hintMs >= 0) return Math.round(Math.min(hintMs, policy.maxMs));
  return backoffDelay(1, { ...policy, jitter: 'full' }, random);
}

/** The delay before retry number `attempt` (1 for the first retry); `random` returns [0, 1). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2 ** 30 already passes any sensible cap; keeps the arithmetic finite.
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(n - 1, 30));
  const r = Math.min(Math.max(random(), 0), 1);
  const delay = policy.jitter === 'full' ? r * cap : cap / 2 + (r * cap) / 2;
  return Math.round(delay);
}
