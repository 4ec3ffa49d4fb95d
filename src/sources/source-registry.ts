import { Logger } from '@nestjs/common';
import { AppConfig, ConfigError } from '../config/app-config';
import { CoinbaseSource } from './coinbase.source';
import { CoinDeskSource } from './coindesk.source';
import { CoinGeckoSource } from './coingecko.source';
import { KrakenSource } from './kraken.source';
import type { PriceSource } from './price-source';
import { SimulatedSource } from './simulated.source';

/** The enabled price sources, in PRICE_SOURCES order (the failover order). */
export class SourceRegistry {
  private static readonly logger = new Logger(SourceRegistry.name);

  constructor(readonly sources: readonly PriceSource[]) {}

  /**
   * Builds the sources PRICE_SOURCES names. CoinDesk needs COINDESK_API_KEY: without it, it is
   * left out with one warning; when nothing is left, start-up fails naming both variables.
   */
  static fromConfig(config: AppConfig): SourceRegistry {
    const sources: PriceSource[] = [];
    for (const name of config.priceSources) {
      const http = { timeoutMs: config.sourceTimeoutMs, maxBytes: config.sourceMaxBodyBytes };
      switch (name) {
        case 'kraken':
          sources.push(new KrakenSource({ ...http, baseUrl: config.sourceUrls.kraken }));
          break;
        case 'coinbase':
          sources.push(new CoinbaseSource({ ...http, baseUrl: config.sourceUrls.coinbase }));
          break;
        case 'coingecko':
          sources.push(new CoinGeckoSource({ ...http, baseUrl: config.sourceUrls.coingecko }));
          break;
        case 'coindesk':
          if (config.coindeskApiKey === undefined) {
            SourceRegistry.logger.warn({ msg: 'coindesk is left out of PRICE_SOURCES: COINDESK_API_KEY is not set', source: 'coindesk' });
          } else {
            sources.push(new CoinDeskSource({ ...http, baseUrl: config.sourceUrls.coindesk, apiKey: config.coindeskApiKey }));
          }
          break;
        case 'simulated':
          sources.push(new SimulatedSource(config.simulatedSeed));
          break;
      }
    }
    if (sources.length === 0) {
      throw new ConfigError(
        `Invalid configuration:\n  PRICE_SOURCES=${JSON.stringify(config.priceSources.join(','))}: no usable source (coindesk needs COINDESK_API_KEY)`,
      );
    }
    return new SourceRegistry(sources);
  }
}
