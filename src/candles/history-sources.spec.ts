import { fixtureJson } from '../../test/support/fixtures';
import { SourceError } from '../sources/price-source';
import { checkHistory, parseCoinbaseCandles, parseKrakenOhlc, plausibleMinute, simulatedHistory } from './history-sources';
import type { Minute } from './minute';

const fixture = fixtureJson;
const MIN = 60_000;
/** The fixtures' minutes are 1764972000..1764972240 (s); "now" is in the last one, which is open. */
const NOW = 1764972240_000 + 30_000;

describe(parseKrakenOhlc.name, () => {
  it('reads [time, open, high, low, close, vwap, volume, count] and leaves out the flat filler of a minute without trades', () => {
    const minutes = parseKrakenOhlc(fixture('kraken_rest_ohlc.json'), 'BTC-USD');
    expect(minutes.map((m) => m.start / 1000)).toEqual([1764972000, 1764972060, 1764972120, 1764972240]);
    expect(minutes[0]).toEqual({ start: 1764972000_000, open: 89412.3, high: 89455, low: 89398.1, close: 89440.7, ticks: 0, firstMs: null, lastMs: null, source: 'kraken' });
  });

  it('refuses an answer for another pair and reports Kraken errors', () => {
    expect(() => parseKrakenOhlc(fixture('kraken_rest_ohlc.json'), 'ETH-USD')).toThrow(SourceError);
    expect(() => parseKrakenOhlc({ error: ['EQuery:Unknown asset pair'] }, 'BTC-USD')).toThrow(/Unknown asset pair/);
  });
});

describe(parseCoinbaseCandles.name, () => {
  it('reads [time, low, high, open, close, volume], newest first', () => {
    const minutes = parseCoinbaseCandles(fixture('coinbase_exchange_candles.json'));
    expect(minutes).toHaveLength(5);
    expect(minutes[4]).toEqual({ start: 1764972000_000, open: 89412.3, high: 89455, low: 89398.1, close: 89440.7, ticks: 0, firstMs: null, lastMs: null, source: 'coinbase' });
  });
});

describe(checkHistory.name, () => {
  const minutes = () => parseCoinbaseCandles(fixture('coinbase_exchange_candles.json'));

  it('keeps the closed, plausible minutes oldest first: the open minute is the live one', () => {
    const kept = checkHistory('coinbase', 'BTC-USD', minutes(), NOW, 89420, 10);
    expect(kept.map((m) => m.start / 1000)).toEqual([1764972000, 1764972060, 1764972120, 1764972180]);
  });

  it('refuses the whole history when it does not meet the live price at the seam', () => {
    expect(() => checkHistory('coinbase', 'BTC-USD', minutes(), NOW, 50_000, 10)).toThrow(/from the live 50000/);
  });

  it('drops a garbled candle: out of range, inconsistent, not a whole minute, too old', () => {
    const ok: Minute = { start: NOW - (NOW % MIN) - MIN, open: 10, high: 12, low: 9, close: 11, ticks: 0, firstMs: null, lastMs: null, source: 'kraken' };
    expect(plausibleMinute(ok, NOW)).toBe(true);
    expect(plausibleMinute({ ...ok, high: 1e308 }, NOW)).toBe(false);
    expect(plausibleMinute({ ...ok, low: 10.5 }, NOW)).toBe(false);
    expect(plausibleMinute({ ...ok, close: Number.NaN }, NOW)).toBe(false);
    expect(plausibleMinute({ ...ok, start: ok.start + 1 }, NOW)).toBe(false);
    expect(plausibleMinute({ ...ok, start: ok.start - 2 * 86_400_000 }, NOW)).toBe(false);
  });
});

describe('simulatedHistory', () => {
  it('makes a plausible day of minutes labelled simulated that ends at the live price, the same for the same seed', async () => {
    const source = simulatedHistory(42);
    const day = await source.minutes('BTC-USD', NOW, 97_000);
    expect(day).toHaveLength(1439);
    expect(day.every((m) => m.source === 'simulated' && plausibleMinute(m, NOW))).toBe(true);
    expect(day.at(-1)?.close).toBe(97_000);
    const closes = day.map((m) => m.close);
    expect(Math.max(...closes) / Math.min(...closes)).toBeLessThan(1.5);
    expect(await simulatedHistory(42).minutes('BTC-USD', NOW, 97_000)).toEqual(day);
  });
});
