import type { Tick } from '@price-stream/client';
import { tickerItems } from './ticker-items';

const tick: Tick = { id: '1-0', pair: 'BTC-USD', price: 97_500, timestamp: '2026-11-21T21:00:00.000Z', source: 'kraken' };

describe('tickerItems', () => {
  it('shows bid, ask, spread and the 24 h figures in the pair currency, with thousands separators', () => {
    const items = tickerItems({ ...tick, bid: 97_499.5, ask: 97_500.5, open24h: 96_000, high24h: 98_000, low24h: 95_000.25, volume24h: 1234.567 }, 'en-US');
    expect(items.map((i) => [i.field, i.text])).toEqual([
      ['bid', '$97,499.50'],
      ['ask', '$97,500.50'],
      ['spread', '$1.0000 (0.001%)'],
      ['change24h', '+1.56%'],
      ['high24h', '$98,000.00'],
      ['low24h', '$95,000.25'],
      ['volume24h', '1,234.57 BTC'],
    ]);
  });

  it('leaves out what the tick does not carry: nothing at all for a bare tick', () => {
    expect(tickerItems(tick, 'en-US')).toEqual([]);
    expect(tickerItems({ ...tick, high24h: 98_000 }, 'en-US').map((i) => i.field)).toEqual(['high24h']);
  });

  it('shows no spread without both sides, or when the book is crossed', () => {
    expect(tickerItems({ ...tick, bid: 97_000 }, 'en-US').map((i) => i.field)).toEqual(['bid']);
    expect(tickerItems({ ...tick, bid: 97_001, ask: 97_000 }, 'en-US').map((i) => i.field)).toEqual(['bid', 'ask']);
  });

  it('shows a falling 24 h change with a real minus sign', () => {
    expect(tickerItems({ ...tick, open24h: 100_000 }, 'en-US')[0]?.text).toBe('\u22122.50%');
  });
});
