import { Logger } from '@nestjs/common';
import { ConfigError, loadConfig } from '../config/app-config';
import { CoinDeskSource } from './coindesk.source';
import { SourceRegistry } from './source-registry';

describe(SourceRegistry.name, () => {
  let warn: jest.SpyInstance;
  let info: jest.SpyInstance;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    info = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    warn.mockRestore();
    info.mockRestore();
  });

  it('builds the sources in PRICE_SOURCES order', () => {
    const registry = SourceRegistry.fromConfig(
      loadConfig({ PRICE_SOURCES: 'simulated,coingecko,kraken,coinbase,coindesk', COINDESK_API_KEY: 'k' }),
    );
    expect(registry.sources.map((s) => s.name)).toEqual(['simulated', 'coingecko', 'kraken', 'coinbase', 'coindesk']);
    expect(registry.sources[4]).toBeInstanceOf(CoinDeskSource);
    expect(warn).not.toHaveBeenCalled();
    expect(info).not.toHaveBeenCalled();
  });

  it('leaves coindesk out with one info line, not a warning, when COINDESK_API_KEY is not set', () => {
    const registry = SourceRegistry.fromConfig(loadConfig({ PRICE_SOURCES: 'kraken,coindesk,coinbase' }));
    expect(registry.sources.map((s) => s.name)).toEqual(['kraken', 'coinbase']);
    expect(warn).not.toHaveBeenCalled();
    expect(info).toHaveBeenCalledTimes(1);
    expect(info.mock.calls[0][0]).toMatchObject({ msg: expect.stringContaining('COINDESK_API_KEY'), source: 'coindesk' });
  });

  it('fails naming PRICE_SOURCES and COINDESK_API_KEY when no source is left', () => {
    expect(() => SourceRegistry.fromConfig(loadConfig({ PRICE_SOURCES: 'coindesk' }))).toThrow(ConfigError);
    expect(() => SourceRegistry.fromConfig(loadConfig({ PRICE_SOURCES: 'coindesk' }))).toThrow(/PRICE_SOURCES.*COINDESK_API_KEY/s);
  });
});
