import type { SourceError, SourceErrorKind } from '../sources/price-source';
import { backoffDelay } from '../util/backoff';

export type CircuitState = 'closed' | 'open' | 'half_open';

export type CircuitSnapshot = {
  state: CircuitState;
  /** Failed polls since the last success (a poll counts once, however many requests it made). */
  consecutiveFailures: number;
  /** When the next (trial) request may go out: ISO-8601, null while closed. */
  nextAttemptAt: string | null;
  lastError: { kind: SourceErrorKind; message: string; at: string } | null;
  lastSuccessAt: string | null;
};

export type CircuitBreakerOptions = {
  /** The first backoff (the poll interval); it doubles with each failure in a row. */
  baseMs: number;
  /** No backoff is longer, not even an upstream's Retry-After (SOURCE_BACKOFF_MAX_MS). */
  maxMs: number;
  now?: () => number;
  /** In [0, 1): picks the jitter (as in backoffDelay: 0 the full backoff, near 1 half of it). */
  random?: () => number;
};

/**
 * One upstream's circuit. Closed: requests go out. A failure opens it for an exponential
 * backoff with jitter (at least the Retry-After of a 429, at most maxMs). Once that has elapsed it is
 * half-open: exactly one trial request may go out; its success closes the circuit, its failure
 * re-opens it with the next, longer backoff.
 *
 * The caller asks `tryAcquire()` before a request and reports the outcome with `onSuccess()`,
 * `onFailure(err)` or, when the request was cancelled, `release()`.
 */
export class CircuitBreaker {
  private openUntil = 0;
  private failures = 0;
  private isOpen = false;
  private trialInFlight = false;
  private lastError: CircuitSnapshot['lastError'] = null;
  private lastSuccessAt: number | null = null;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (!this.isOpen) return 'closed';
    return this.trialInFlight || this.now() >= this.openUntil ? 'half_open' : 'open';
  }

  /** Whether a request may go out now; in half-open, true once for the trial. */
  tryAcquire(): boolean {
    switch (this.state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half_open':
        if (this.trialInFlight) return false;
        this.trialInFlight = true;
        return true;
    }
  }

  onSuccess(): void {
    this.isOpen = false;
    this.trialInFlight = false;
    this.failures = 0;
    this.lastSuccessAt = this.now();
  }

  onFailure(error: SourceError): void {
    this.failures++;
    this.trialInFlight = false;
    this.isOpen = true;
    // Drawn from [50 %, 100 %] of the exponential value, so that sources and instances drift apart.
    const backoff = backoffDelay(this.failures, this.options);
    // A Retry-After of an hour or a day must not silence a source for longer than the operator allows.
    this.openUntil = this.now() + Math.min(this.options.maxMs, Math.max(backoff, error.retryAfterMs ?? 0));
    this.lastError = { kind: error.kind, message: error.message, at: new Date(this.now()).toISOString() };
  }

  /** Gives back a trial that never got an answer (cancelled): the next caller may try. */
  release(): void {
    this.trialInFlight = false;
  }

  snapshot(): CircuitSnapshot {
    return {
      state: this.state,
      consecutiveFailures: this.failures,
      nextAttemptAt: this.isOpen ? new Date(this.openUntil).toISOString() : null,
      lastError: this.lastError,
      lastSuccessAt: this.lastSuccessAt === null ? null : new Date(this.lastSuccessAt).toISOString(),
    };
  }
}
