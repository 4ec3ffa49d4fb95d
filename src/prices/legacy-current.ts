import type { Tick } from '../shared/wire';

const NAMES: Record<string, string> = {
  BTC: 'Bitcoin',
  ETH: 'Ethereum',
  SOL: 'Solana',
  XRP: 'XRP',
  ADA: 'Cardano',
  DOGE: 'Dogecoin',
  LTC: 'Litecoin',
  DOT: 'Polkadot',
};

export type LegacyCurrent = Tick & { symbol: string; name: string };

/** `GET /api/price/current` of the replaced Bitcoin tracker: the tick with its symbol and name. */
export function legacyCurrent(tick: Tick): LegacyCurrent {
  const base = tick.pair.split('-')[0];
  return { ...tick, symbol: base, name: NAMES[base] ?? base };
}
