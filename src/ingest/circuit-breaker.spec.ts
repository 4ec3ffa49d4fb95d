import { SourceError } from '../sources/price-source';
import { CircuitBreaker } from './circuit-breaker';

const BASE = 1000;
const MAX = 8000;
const failure = new SourceError('kraken', 'http_status', 'HTTP 500', undefined, 500);

describe(CircuitBreaker.name, () => {
  let now: number;
  let random: number;
  let breaker: CircuitBreaker;

  beforeEach(() => {
    now = 1_000_000;
    random = 0; // no jitter off the top: the full exponential backoff (backoffDelay's convention)
    breaker = new CircuitBreaker({ baseMs: BASE, maxMs: MAX, now: () => now, random: () => random });
  });

  /** Fails the trial at the moment the circuit half-opens; returns how long it stays open. */
  const failTrial = (error: SourceError = failure): number => {
    expect(breaker.tryAcquire()).toBe(true);
    breaker.onFailure(error);
    const until = Date.parse(breaker.snapshot().nextAttemptAt ?? '');
    const openFor = until - now;
    now = until;
    return openFor;
  };

  it('lets every request through while closed', () => {
    expect(breaker.state).toBe('closed');
    expect([breaker.tryAcquire(), breaker.tryAcquire()]).toEqual([true, true]);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, nextAttemptAt: null, lastError: null });
  });

  it('opens for the base backoff after one failure and refuses requests until it elapses', () => {
    breaker.onFailure(failure);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    now += BASE - 1;
    expect(breaker.tryAcquire()).toBe(false);
    now += 1;
    expect(breaker.state).toBe('half_open');
  });

  it('allows exactly one trial request while half-open', () => {
    breaker.onFailure(failure);
    now += BASE;
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.state).toBe('half_open');
  });

  it('closes and forgets the failures when the trial succeeds', () => {
    breaker.onFailure(failure);
    now += BASE;
    breaker.tryAcquire();
    breaker.onSuccess();
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, nextAttemptAt: null });
    expect(breaker.snapshot().lastSuccessAt).toBe(new Date(now).toISOString());
    breaker.onFailure(failure);
    expect(Date.parse(breaker.snapshot().nextAttemptAt ?? '') - now).toBe(BASE);
  });

  it('doubles the backoff with each failed trial up to the cap', () => {
    breaker.onFailure(failure);
    now += BASE;
    expect([failTrial(), failTrial(), failTrial(), failTrial(), failTrial()]).toEqual([2000, 4000, 8000, 8000, 8000]);
    expect(breaker.snapshot().consecutiveFailures).toBe(6);
  });

  it('draws the backoff between 50 % and 100 % of its exponential value', () => {
    random = 1 - Number.EPSILON; // the most the jitter takes off
    breaker.onFailure(failure);
    expect(Date.parse(breaker.snapshot().nextAttemptAt ?? '') - now).toBe(BASE / 2);
    now += BASE / 2;
    random = 0.5;
    expect(failTrial()).toBe(1500);
  });

  it('stays open at least for Retry-After when a 429 carries one', () => {
    breaker.onFailure(new SourceError('coingecko', 'rate_limited', 'HTTP 429', 5000, 429));
    expect(Date.parse(breaker.snapshot().nextAttemptAt ?? '') - now).toBe(5000);
    now += 4999;
    expect(breaker.tryAcquire()).toBe(false);
    now += 1;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('caps a Retry-After longer than maxMs at maxMs', () => {
    breaker.onFailure(new SourceError('kraken', 'rate_limited', 'HTTP 429', 86_400_000, 429));
    expect(Date.parse(breaker.snapshot().nextAttemptAt ?? '') - now).toBe(MAX);
    now += MAX;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('uses the backoff when it is longer than Retry-After', () => {
    breaker.onFailure(new SourceError('coingecko', 'rate_limited', 'HTTP 429', 10, 429));
    expect(Date.parse(breaker.snapshot().nextAttemptAt ?? '') - now).toBe(BASE);
  });

  it('gives the trial back on release so that the next caller may try', () => {
    breaker.onFailure(failure);
    now += BASE;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.release();
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.snapshot().consecutiveFailures).toBe(1);
  });

  it('reports the last error with its kind and time', () => {
    breaker.onFailure(new SourceError('kraken', 'timeout', 'no answer within 3000 ms'));
    expect(breaker.snapshot().lastError).toEqual({ kind: 'timeout', message: 'kraken: no answer within 3000 ms', at: new Date(now).toISOString() });
  });
});
