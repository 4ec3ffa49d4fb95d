/**
 * A pair's name, without the framework: the configuration reads PAIRS with it before the app's
 * modules are loaded (service.ts takes the port first). domain/pair.ts re-exports it.
 */

/** `BASE-QUOTE` or `BASE/QUOTE`, 2 to 10 letters or digits each side, any case. */
const PAIR_PATTERN = /^([A-Za-z0-9]{2,10})[-/]([A-Za-z0-9]{2,10})$/;

export const MAX_PAIR_LENGTH = 21;

/** The canonical form (`BTC-USD`) of a pair, or null when it is not well formed. */
export function normalizePair(raw: string): string | null {
  if (raw.length > MAX_PAIR_LENGTH) return null;
  const m = PAIR_PATTERN.exec(raw.trim());
  return m ? `${m[1].toUpperCase()}-${m[2].toUpperCase()}` : null;
}
