export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `promise`'s value, or 'late' when it has not settled within `ms` (the timer cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 10 ms until it holds; returns how long that took, or throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, describe: () => string = () => ''): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms ${describe()}`);
    await sleep(10);
  }
  return Date.now() - start;
}
