import { Global, Logger, Module, type INestApplicationContext } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { FakeUpstream } from '../../test/support/fake-upstream';
import { AppConfig, loadConfig } from '../config/app-config';
import { MetricsModule } from '../metrics/metrics.module';
import { MemoryTickLogModule } from '../stream/memory-tick-log.module';
import { PriceStreamService } from '../stream/price-stream.service';
import { TickLog } from '../stream/tick-log';
import { PollerModule } from './poller.module';
import { PricePollerService } from './price-poller.service';
import { PublishPort, PublishPortModule } from './publish-port';

/** A port without the stream module: the price stream over the tick log, as the cluster's primary has it. */
@Module({ providers: [PriceStreamService, { provide: PublishPort, useExisting: TickLog }], exports: [PublishPort, PriceStreamService] })
class PortModule {}

async function createContext(env: Record<string, string>): Promise<INestApplicationContext> {
  const config = loadConfig({ PAIRS: 'BTC-USD,ETH-USD', POLL_INTERVAL_MS: '3600000', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off', ...env });
  @Global()
  @Module({ providers: [{ provide: AppConfig, useValue: config }], exports: [AppConfig] })
  class TestConfigModule {}
  const moduleRef = await Test.createTestingModule({ imports: [TestConfigModule, MetricsModule, MemoryTickLogModule, ScheduleModule.forRoot(), PublishPortModule.from(PortModule), PollerModule] }).compile();
  return moduleRef.init();
}

describe(PollerModule.name, () => {
  let app: INestApplicationContext | undefined;
  let fake: FakeUpstream | undefined;

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    await app?.close();
    await fake?.close();
    app = undefined;
    fake = undefined;
    jest.restoreAllMocks();
  });

  it('polls at start-up and publishes simulated prices when PRICE_SOURCES=simulated', async () => {
    app = await createContext({ PRICE_SOURCES: 'simulated', SIMULATED_SEED: '5' });
    const poller = app.get(PricePollerService);
    await poller.refresh(); // joins the start-up poll if it still runs
    const stream = app.get(PriceStreamService);
    expect(stream.latest('BTC-USD')).toMatchObject({ source: 'simulated', price: expect.any(Number) });
    expect(stream.latest('ETH-USD')?.source).toBe('simulated');
  });

  it('removes its interval when the application closes', async () => {
    app = await createContext({ PRICE_SOURCES: 'simulated' });
    const scheduler = app.get(SchedulerRegistry);
    expect(scheduler.getIntervals()).toEqual([PricePollerService.INTERVAL_NAME]);
    await app.close();
    expect(scheduler.getIntervals()).toEqual([]);
    app = undefined;
  });

  it('serves from the next real source over HTTP when the first answers 500', async () => {
    fake = await FakeUpstream.start();
    fake.fail('kraken', 'http_500');
    app = await createContext({ ...fake.env(), PRICE_SOURCES: 'kraken,coinbase', SOURCE_TIMEOUT_MS: '1000' });
    const poller = app.get(PricePollerService);
    await poller.refresh();
    expect(app.get(PriceStreamService).latest('BTC-USD')).toMatchObject({ source: 'coinbase', price: 97000.5 });
    expect(poller.sourceCircuits().map((c) => [c.source, c.state])).toEqual([
      ['kraken', 'open'],
      ['coinbase', 'closed'],
    ]);
    expect(fake.requestCount('kraken')).toBe(1);
    expect(fake.requestCount('coinbase')).toBe(2);
  });
});
