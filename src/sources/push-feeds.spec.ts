import { readFixture } from '../../test/support/fixtures';
import { coinbaseFrame } from './coinbase-ws.feed';
import { krakenFrame, krakenWsSymbol } from './kraken-ws.feed';

const lines = (name: string): unknown[] =>
  readFixture(name)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as unknown);

describe('krakenFrame', () => {
  const [status, acked, refused, snapshot, heartbeat, update] = lines('kraken_ws_v2_frames.jsonl');
  const asked = new Set(['USDT-USD', 'ALGO-USD', 'NOPE-USD']);

  it('names pairs as Kraken v2 symbols (BTC, not XBT)', () => {
    expect(krakenWsSymbol('BTC-USD')).toBe('BTC/USD');
  });

  it('reads status and heartbeat as signs of life, and subscribe answers as acks and refusals', () => {
    expect(krakenFrame(status, asked)).toEqual({ kind: 'alive' });
    expect(krakenFrame(heartbeat, asked)).toEqual({ kind: 'alive' });
    expect(krakenFrame(acked, asked)).toEqual({ kind: 'acked', pairs: ['USDT-USD'] });
    expect(krakenFrame(refused, asked)).toEqual({ kind: 'refused', pairs: ['NOPE-USD'], message: 'Currency pair not supported NOPE/USD' });
  });

  it('maps a ticker snapshot of the fixture to a quote with the ticker fields and the exchange time', () => {
    expect(krakenFrame(snapshot, asked)).toEqual({
      kind: 'quotes',
      quotes: [
        {
          pair: 'USDT-USD',
          price: 0.99981,
          sourceTimestamp: '2026-09-24T03:54:18.054Z',
          bid: 0.9998,
          ask: 0.99981,
          high24h: 1,
          low24h: 0.99959,
          volume24h: 270638277.5046128,
          open24h: 0.99981 - 0.00005, // last less the 24 h change
        },
      ],
    });
    expect(krakenFrame(update, asked)).toMatchObject({ kind: 'quotes', quotes: [{ pair: 'ALGO-USD', price: 0.10035, sourceTimestamp: '2023-09-25T09:04:31.742Z' }] });
  });

  it('ignores a ticker for a symbol not asked for, and calls a malformed frame garbage', () => {
    expect(krakenFrame(update, new Set(['BTC-USD']))).toEqual({ kind: 'ignored' });
    expect(krakenFrame([1, 2], asked).kind).toBe('garbage');
    expect(krakenFrame({ channel: 'ticker', data: 'x' }, asked).kind).toBe('garbage');
    expect(krakenFrame({ channel: 'ticker', data: [{ symbol: 'ALGO/USD', last: 'NaN' }] }, asked).kind).toBe('garbage');
    expect(krakenFrame({ hello: 1 }, asked).kind).toBe('garbage');
  });
});

describe('coinbaseFrame', () => {
  const [subscriptions, ticker] = lines('coinbase_exchange_ws.jsonl');
  const asked = new Set(['BTC-USD']);

  it('reads subscriptions as the ack of the ticker products asked for', () => {
    expect(coinbaseFrame(subscriptions, asked)).toEqual({ kind: 'acked', pairs: ['BTC-USD'] });
  });

  it('maps the fixture ticker to a quote with best bid/ask, the 24 h fields and the exchange time', () => {
    expect(coinbaseFrame(ticker, asked)).toEqual({
      kind: 'quotes',
      quotes: [
        {
          pair: 'BTC-USD',
          price: 84737.58,
          sourceTimestamp: '2026-10-03T20:58:31.127Z',
          bid: 84737.58,
          ask: 84737.59,
          open24h: 84430.55,
          high24h: 85021.57,
          low24h: 84400,
          volume24h: 1836.9678175,
        },
      ],
    });
  });

  it('refuses the products an error names, ignores other products and calls a frame without type garbage', () => {
    expect(coinbaseFrame({ type: 'error', message: 'Failed to subscribe', reason: 'BTC-USD is not a valid product' }, asked)).toEqual({
      kind: 'refused',
      pairs: ['BTC-USD'],
      message: 'Failed to subscribe: BTC-USD is not a valid product',
    });
    expect(coinbaseFrame({ ...(ticker as object), product_id: 'ETH-USD' }, asked)).toEqual({ kind: 'ignored' });
    expect(coinbaseFrame({ type: 'heartbeat' }, asked)).toEqual({ kind: 'alive' });
    expect(coinbaseFrame({ price: '1' }, asked).kind).toBe('garbage');
  });
});
