import { SourceError } from '../../src/sources/price-source';

/** The SourceError a promise rejects with; fails the test when it resolves or rejects otherwise. */
export async function sourceErrorOf(promise: Promise<unknown>): Promise<SourceError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SourceError)) throw new Error(`expected a SourceError, got ${String(err)}`);
  return err;
}
