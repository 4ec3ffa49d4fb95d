import { direction, formatAge, formatChange, formatClock, formatDelay, formatPrice, plural } from './format';

describe('formatPrice', () => {
  it('shows cents with the currency sign when the quote is a fiat currency', () => {
    expect(formatPrice(97123.456, 'BTC-USD', 'en-US')).toBe('$97,123.46');
    expect(formatPrice(3500.5, 'ETH-EUR', 'en-US')).toBe('€3,500.50');
  });

  it('takes the decimals from the magnitude: cents for SOL as for BTC, more only below 100', () => {
    expect(formatPrice(142.3456, 'SOL-USD', 'en-US')).toBe('$142.35');
    expect(formatPrice(15.43219, 'LINK-USD', 'en-US')).toBe('$15.432');
    expect(formatPrice(2.345678, 'XRP-USD', 'en-US')).toBe('$2.3457');
  });

  it('keeps significant digits when the price is small', () => {
    expect(formatPrice(1.23456, 'XRP-USD', 'en-US')).toBe('$1.2346');
    expect(formatPrice(0.000123456, 'SHIB-USD', 'en-US')).toBe('$0.0001235');
  });

  it('appends the quote when it is not a fiat currency', () => {
    expect(formatPrice(0.0345, 'ETH-BTC', 'en-US')).toBe('0.03450 BTC');
  });
});

describe('formatChange', () => {
  it('signs the percentage with plus or a real minus when the price moved', () => {
    expect(formatChange(100, 101.5, 'en-US')).toBe('+1.50%');
    expect(formatChange(100, 99.95, 'en-US')).toBe('\u22120.05%');
  });

  it('shows an unsigned zero when the change rounds to nothing', () => {
    expect(formatChange(100, 100.0001, 'en-US')).toBe('0.00%');
  });

  it('tells the direction of a move', () => {
    expect([direction(1, 2), direction(2, 1), direction(1, 1)]).toEqual(['up', 'down', 'flat']);
  });
});

describe('formatAge', () => {
  it('uses seconds, minutes and hours as the age grows', () => {
    expect([500, 4_900, 125_000, 7_300_000].map(formatAge)).toEqual(['just now', '4 s ago', '2 min ago', '2 h ago']);
  });

  it('treats a negative age (clock skew) as just now', () => {
    expect(formatAge(-3000)).toBe('just now');
  });
});

describe('formatClock', () => {
  it('shows a 24-hour time with seconds in the given zone', () => {
    expect(formatClock('2026-11-21T21:00:03.123Z', 'en-GB', 'UTC')).toBe('21:00:03');
  });

  it('shows a dash when the timestamp is malformed', () => {
    expect(formatClock('yesterday')).toBe('—');
  });
});

describe('formatDelay and plural', () => {
  it('shows tenths below ten seconds and whole seconds above', () => {
    expect([1234, 9_950, 12_400].map(formatDelay)).toEqual(['1.2 s', '9.9 s', '12 s']);
  });

  it('picks the singular only for one', () => {
    expect([0, 1, 2].map((n) => plural(n, 'tick', 'ticks'))).toEqual(['0 ticks', '1 tick', '2 ticks']);
  });
});
