import { SOURCE_NAMES } from '../../../src/shared/wire';
import { asReset, asTick, asWsMessage, parseJson } from './wire-guards';

const tick = { id: '1-0', pair: 'BTC-USD', price: 97000.5, timestamp: '2026-11-21T21:00:00.000Z', source: 'kraken' };

describe('asTick', () => {
  it('accepts a tick of the contract and keeps sourceTimestamp when present', () => {
    expect(asTick(tick)).toEqual(tick);
    expect(asTick({ ...tick, sourceTimestamp: 'x' })).toEqual({ ...tick, sourceTimestamp: 'x' });
  });

  it('rejects a tick whose price is not a finite positive number', () => {
    expect(asTick({ ...tick, price: 0 })).toBeNull();
    expect(asTick({ ...tick, price: '97000' })).toBeNull();
    expect(asTick({ ...tick, price: null })).toBeNull();
  });

  it('accepts every source of the wire list and a composite tick with its sources', () => {
    for (const source of SOURCE_NAMES) expect(asTick({ ...tick, source })).toEqual({ ...tick, source });
    expect(asTick({ ...tick, source: 'composite', sources: ['kraken', 'coinbase'] })).toEqual({ ...tick, source: 'composite', sources: ['kraken', 'coinbase'] });
  });

  it('keeps the ticker fields that are positive numbers and drops the others', () => {
    const full = { ...tick, bid: 97000, ask: 97001, open24h: 96000, high24h: 98000, low24h: 95000, volume24h: 1234.5 };
    expect(asTick(full)).toEqual(full);
    expect(asTick({ ...tick, bid: 'x', ask: -1, volume24h: Infinity })).toEqual(tick);
  });

  it('keeps skipped on a conflated tick when it is a positive whole number, and drops it otherwise', () => {
    expect(asTick({ ...tick, skipped: 4 })).toEqual({ ...tick, skipped: 4 });
    expect(asTick({ ...tick, skipped: 1.5 })).toEqual(tick);
    expect(asTick({ ...tick, skipped: -1 })).toEqual(tick);
    expect(asTick({ ...tick, skipped: '4' })).toEqual(tick);
  });

  it('delivers a tick from a source it does not know (an upstream added later), with its sources', () => {
    expect(asTick({ ...tick, source: 'binance' })).toEqual({ ...tick, source: 'binance' });
    expect(asTick({ ...tick, source: 'composite', sources: ['kraken', 'binance', 7] })).toEqual({ ...tick, source: 'composite', sources: ['kraken', 'binance'] });
  });

  it('rejects a tick without a source, or with a missing id', () => {
    expect(asTick({ ...tick, source: '' })).toBeNull();
    expect(asTick({ ...tick, source: 7 })).toBeNull();
    expect(asTick({ ...tick, id: undefined })).toBeNull();
    expect(asTick([tick])).toBeNull();
  });
});

describe('asWsMessage', () => {
  it('reads price, reset and error frames', () => {
    expect(asWsMessage({ type: 'price', ...tick })).toEqual({ type: 'price', ...tick });
    expect(asWsMessage({ type: 'reset', reason: 'history_gap', oldestId: '5-0', oldestTimestamp: null })).toEqual({
      type: 'reset',
      reason: 'history_gap',
      oldestId: '5-0',
      oldestTimestamp: null,
    });
    expect(asWsMessage({ type: 'error', code: 'INVALID_PAIR', message: 'no' })).toEqual({ type: 'error', code: 'INVALID_PAIR', message: 'no' });
  });

  it('returns null when the frame is of no known type or malformed', () => {
    expect(asWsMessage({ type: 'hello' })).toBeNull();
    expect(asWsMessage({ type: 'price', ...tick, price: -1 })).toBeNull();
    expect(asWsMessage(parseJson('{not json'))).toBeNull();
    expect(asReset({ reason: 'other' })).toBeNull();
  });
});
