import { splitPair } from '../domain/pair';
import type { PriceSource, SourceResult } from './price-source';

/** Plausible starting prices, so that a demo looks like the market. */
const START_PRICES: Readonly<Record<string, number>> = { BTC: 97_000, ETH: 3_500 };
const DEFAULT_START = 100;
/** Each step moves the price by 0.01 % to 0.2 %, up or down. */
const MIN_STEP = 0.0001;
const MAX_STEP = 0.002;
/** Prices keep 8 significant digits; a step is always larger, so every fetch changes the price. */
const DIGITS = 8;

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG; plenty for a demo walk. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a, so that each pair gets its own stream of numbers from one seed. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

type Walk = { price: number; random: () => number };

/**
 * A random walk per pair for offline use and demos, reproducible from SIMULATED_SEED: the n-th
 * price of a pair depends only on the seed, the pair and n. Multiplicative steps keep it > 0.
 * Its ticks are always labelled `simulated`.
 */
export class SimulatedSource implements PriceSource {
  readonly name = 'simulated' as const;
  readonly batches = true;
  private readonly walks = new Map<string, Walk>();

  constructor(private readonly seed: number) {}

  supports(): boolean {
    return true;
  }

  fetch(pairs: readonly string[], signal: AbortSignal): Promise<SourceResult> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return Promise.resolve({ quotes: pairs.map((pair) => ({ pair, price: this.step(pair) })), failed: [] });
  }

  private step(pair: string): number {
    let walk = this.walks.get(pair);
    if (!walk) {
      walk = { price: START_PRICES[splitPair(pair).base] ?? DEFAULT_START, random: mulberry32((this.seed ^ hash(pair)) >>> 0) };
      this.walks.set(pair, walk);
    }
    const r = walk.random();
    const size = MIN_STEP + (MAX_STEP - MIN_STEP) * walk.random();
    walk.price = Number((walk.price * (r < 0.5 ? 1 - size : 1 + size)).toPrecision(DIGITS));
    return walk.price;
  }
}
