import { Logger } from '@nestjs/common';
import { AppConfig, ConfigError } from '../config/app-config';
import type { SourceName } from '../shared/wire';
import { CoinbaseSource } from './coinbase.source';
import { CoinDeskSource } from './coindesk.source';
import { CoinGeckoSource } from './coingecko.source';
import { KrakenSource } from './kraken.source';
import type { PriceSource } from './price-source';
import { CoinbaseWsFeed } from './coinbase-ws.feed';
import { KrakenWsFeed } from './kraken-ws.feed';
import type { PushFeed, PushFeedOptions, PushSourceName } from './push-feed';
import { SimulatedSource } from './simulated.source';
import type { HttpSourceOptions } from './source-helpers';

/** Builds one source from the configuration, or says why it is left out. */
type SourceFactory = (config: AppConfig, http: Omit<HttpSourceOptions, 'baseUrl'>) => PriceSource | { leftOut: string };

/**
 * One factory per name in SOURCE_NAMES (src/shared/wire.ts); the compiler refuses a name
 * without one. Adding a source: its file, its name in the list, its entry here (and its URL
 * default in app-config.ts when it is an HTTP upstream).
 */
const FACTORIES = {
  kraken: (config, http) => new KrakenSource({ ...http, baseUrl: config.sourceUrls.kraken }),
  coinbase: (config, http) => new CoinbaseSource({ ...http, baseUrl: config.sourceUrls.coinbase }),
  coingecko: (config, http) => new CoinGeckoSource({ ...http, baseUrl: config.sourceUrls.coingecko }),
  coindesk: (config, http) =>
    config.coindeskApiKey === undefined
      ? { leftOut: 'COINDESK_API_KEY is not set' }
      : new CoinDeskSource({ ...http, baseUrl: config.sourceUrls.coindesk, apiKey: config.coindeskApiKey }),
  simulated: (config) => new SimulatedSource(config.simulatedSeed),
} satisfies Record<SourceName, SourceFactory>;

/** The push feeds, one per source that has one; built when the source is enabled and its URL is not `off`. */
const FEEDS = {
  kraken: (options) => new KrakenWsFeed(options),
  coinbase: (options) => new CoinbaseWsFeed(options),
} satisfies Record<PushSourceName, (options: PushFeedOptions) => PushFeed>;

/** The enabled price sources, in PRICE_SOURCES order (the failover order), and their push feeds. */
export class SourceRegistry {
  private static readonly logger = new Logger(SourceRegistry.name);

  constructor(
    readonly sources: readonly PriceSource[],
    readonly feeds: ReadonlyMap<SourceName, PushFeed> = new Map(),
  ) {}

  /**
   * Builds the sources PRICE_SOURCES names. CoinDesk needs COINDESK_API_KEY: without it, it is
   * left out with one info line (the default chain names it, and the listening line lists the
   * chain as built, so a start without the key is normal, not a fault); when nothing is left,
   * start-up fails naming both variables.
   */
  static fromConfig(config: AppConfig): SourceRegistry {
    const http = { timeoutMs: config.sourceTimeoutMs, maxBytes: config.sourceMaxBodyBytes };
    const sources: PriceSource[] = [];
    for (const name of config.priceSources) {
      const built = FACTORIES[name](config, http);
      if ('leftOut' in built) SourceRegistry.logger.log({ msg: `${name} is left out of PRICE_SOURCES: ${built.leftOut}`, source: name });
      else sources.push(built);
    }
    if (sources.length === 0) {
      throw new ConfigError(
        `Invalid configuration:\n  PRICE_SOURCES=${JSON.stringify(config.priceSources.join(','))}: no usable source (coindesk needs COINDESK_API_KEY)`,
      );
    }
    const feeds = new Map<SourceName, PushFeed>();
    for (const name of Object.keys(FEEDS) as PushSourceName[]) {
      const url = config.pushUrls[name];
      if (url !== null && sources.some((s) => s.name === name)) feeds.set(name, FEEDS[name]({ url, staleMs: config.pushStaleMs, ackTimeoutMs: config.pushAckTimeoutMs }));
    }
    return new SourceRegistry(sources, feeds);
  }
}
