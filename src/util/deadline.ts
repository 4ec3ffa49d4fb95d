/**
 * Settles like `work`, or rejects with `timeout()` once `ms` have passed without it settling.
 * The work itself is left to end on its own (its rejection is then ignored); the timer never
 * outlives the race.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, timeout: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof timeout === 'string' ? new Error(`${timeout} took longer than ${ms} ms`) : timeout()), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
