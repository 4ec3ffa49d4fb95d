import type { FeedHandlers, PriceFeed } from './price-feed';

/** An app's source of subscriber tokens: called before every (re)connection, and before a Socket.IO token expires. */
export type GetToken = () => string | Promise<string>;

/**
 * A feed that asks for a token before each start: the app's `getToken()` is called on every
 * connection and reconnection, so a stream ended with TOKEN_EXPIRED comes back with a new token
 * (and resumes from the last id, as after any drop). A getToken that fails is a failed attempt,
 * retried with the connection's backoff.
 */
export function withToken(feed: PriceFeed, getToken: GetToken, keep: (token: string) => void): PriceFeed {
  let attempt = 0;
  return {
    kind: feed.kind,
    start(handlers: FeedHandlers) {
      feed.stop();
      const mine = ++attempt;
      Promise.resolve()
        .then(getToken)
        .then(
          (token) => {
            if (attempt !== mine) return;
            keep(token);
            feed.start(handlers);
          },
          (err: unknown) => {
            if (attempt === mine) handlers.closed(`getToken failed: ${err instanceof Error ? err.message : String(err)}`);
          },
        );
    },
    stop() {
      attempt += 1;
      feed.stop();
    },
  };
}

/**
 * When a token expires (epoch ms), read from its `exp` claim only to schedule a refresh before
 * it; null when it has none or is not a JWT. The server verifies tokens; the client never does.
 */
export function tokenExpiry(token: string): number | null {
  const part = token.split('.')[1];
  if (part === undefined) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * The least time between two refreshes. A token's `exp` is in whole seconds: halving what is
 * left of a short one near a second's end would refresh every few milliseconds (the server's
 * event limit then refuses them); the server keeps a stream open a clock allowance past `exp`.
 */
export const MIN_REFRESH_MS = 1000;

/** When to refresh a token valid until `expiresAt`: 30 s before it, or halfway for a shorter one, never sooner than MIN_REFRESH_MS. */
export function refreshDelay(expiresAt: number, now: number): number {
  const left = expiresAt - now;
  return Math.max(MIN_REFRESH_MS, left > 60_000 ? left - 30_000 : left / 2);
}
