import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { CandleBackfill } from '../candles/candle-backfill.service';
import { CandleStore } from '../candles/candle-store';
import { AppConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { LoggingModule } from '../logging/logging.module';
import { MetricsModule } from '../metrics/metrics.module';
import { PollerModule } from '../ingest/poller.module';
import { PublishPort, PublishPortModule } from '../ingest/publish-port';
import { MemoryTickLog } from '../stream/memory-tick-log';
import { PriceStreamService } from '../stream/price-stream.service';
import { TickLog, type Confirmation } from '../stream/tick-log';
import type { Tick } from '../shared/wire';

/** Where the primary's ticks and confirmations go: to every worker. */
export type TickBus = { tick(tick: Tick): void; confirmation(confirmation: Confirmation): void };

/**
 * The window of a service of workers without Redis, kept by the primary (the one process that
 * polls): every tick it commits, with its id, and every confirmation go to the bus in order.
 * Workers start from its `snapshot` and keep the same window (ReplicaTickLog).
 */
export class PrimaryTickLog extends MemoryTickLog {
  constructor(
    config: AppConfig,
    private readonly bus: TickBus,
  ) {
    super(config);
    this.committed$.subscribe((tick) => bus.tick(tick));
  }

  override shareConfirmation(confirmation: Confirmation): void {
    this.bus.confirmation(confirmation);
  }
}

@Global()
@Module({})
class PrimaryTickLogModule {
  static forRoot(bus: TickBus): DynamicModule {
    return {
      module: PrimaryTickLogModule,
      providers: [{ provide: TickLog, useFactory: (config: AppConfig) => new PrimaryTickLog(config, bus), inject: [AppConfig] }],
      exports: [TickLog],
    };
  }
}

/**
 * What the primary's poller publishes to: the price stream over the PrimaryTickLog (the port),
 * and the candle store built from its ticks. No hub, connection registry or gate: the workers
 * serve, each from its replica of the window. (Not CandlesModule, which brings StreamModule.)
 */
@Module({
  providers: [PriceStreamService, { provide: PublishPort, useExisting: TickLog }, CandleStore, CandleBackfill],
  exports: [PublishPort, CandleStore],
})
class PrimaryPipelineModule {}

/**
 * The primary's own application context (no HTTP: the workers serve). Always its logger and
 * metrics (its own process' figures are part of the service's); without REDIS_URL also the
 * poller, the window and the candle store, since the primary is then the one process that polls.
 */
@Module({})
export class PrimaryModule {
  static register(config: AppConfig, bus: TickBus): DynamicModule {
    // Without Redis the primary also keeps the candles (built from its ticks, backfilled at start) that the workers ask for.
    const polling = config.redis ? [] : [ScheduleModule.forRoot(), PrimaryTickLogModule.forRoot(bus), PublishPortModule.from(PrimaryPipelineModule), PollerModule];
    return {
      module: PrimaryModule,
      imports: [ConfigModule.forRoot(config), LoggingModule.forRoot(config), MetricsModule, ...polling],
    };
  }
}
