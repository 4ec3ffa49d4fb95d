import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApp, type CreateAppOptions } from '../../src/bootstrap';
import { loadConfig, type AppConfig } from '../../src/config/app-config';
import { PricePollerService } from '../../src/ingest/price-poller.service';
import { MetricsService } from '../../src/metrics/metrics.service';
import { PriceStreamService } from '../../src/stream/price-stream.service';
import { StreamHub } from '../../src/stream/stream-hub';
import { TickLog } from '../../src/stream/tick-log';
import type { DisconnectReason, SourceName, Tick, Transport } from '../../src/shared/wire';

export type TestApp = {
  app: NestExpressApplication;
  config: AppConfig;
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  stream: PriceStreamService;
  /** The tick log, which is also the publish port: `log.publish(draft)` publishes as the poller would. */
  log: TickLog;
  /** The subscription core every transport goes through. */
  hub: StreamHub;
  /** Every stream connection ended from now on, with its transport and reason. */
  recordDisconnects(): [Transport, DisconnectReason][];
  /** Publishes a price as if a source had fetched it; resolves to the tick (null if unchanged). */
  publish(pair: string, price: number, source?: SourceName): Promise<Tick | null>;
  /** Publishes each price in turn; every one must change the price. */
  publishAll(pair: string, prices: number[]): Promise<Tick[]>;
  close(): Promise<void>;
};

/**
 * Starts the real application on 127.0.0.1:0. Unless the test names its PRICE_SOURCES, the
 * poller stays idle and the test drives prices itself with `publish`; pass env to change anything.
 */
export async function startApp(env: Record<string, string> = {}, options: CreateAppOptions = {}): Promise<TestApp> {
  const config = loadConfig({
    PAIRS: 'BTC-USD,ETH-USD',
    PRICE_SOURCES: 'simulated',
    LOG_LEVEL: 'silent',
    // Tests never reach the internet: a push feed is only on when a test points it at a fake.
    KRAKEN_WS_URL: 'off',
    COINBASE_WS_URL: 'off',
    // Nor does the candle backfill of a test that enables coinbase without the fake's env().
    COINBASE_EXCHANGE_URL: 'http://127.0.0.1:9',
    ...env,
  });
  const app = await createApp(config, options);
  if (env.PRICE_SOURCES === undefined) app.get(PricePollerService).setEnabled(false);
  await app.listen(Number(env.PORT ?? 0), '127.0.0.1');
  const address = app.getHttpServer().address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const stream = app.get(PriceStreamService);
  const log = app.get(TickLog);
  let closed = false;
  const publish: TestApp['publish'] = (pair, price, source = 'simulated') =>
    log.publish({ pair, price, source, timestamp: new Date().toISOString() });
  return {
    app,
    config,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    stream,
    log,
    hub: app.get(StreamHub),
    recordDisconnects: () => {
      const seen: [Transport, DisconnectReason][] = [];
      const metrics = app.get(MetricsService);
      const original = metrics.disconnected.bind(metrics);
      jest.spyOn(metrics, 'disconnected').mockImplementation((transport, reason) => {
        seen.push([transport, reason]);
        original(transport, reason);
      });
      return seen;
    },
    publish,
    publishAll: async (pair, prices) => {
      const out: Tick[] = [];
      for (const price of prices) {
        const tick = await publish(pair, price);
        if (!tick) throw new Error(`price ${price} of ${pair} did not change`);
        out.push(tick);
      }
      return out;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}
