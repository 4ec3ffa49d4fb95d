import { NestFactory } from '@nestjs/core';
import { loadConfig } from '../config/app-config';
import { PricePollerService } from '../ingest/price-poller.service';
import { PublishPort } from '../ingest/publish-port';
import { ConnectionRegistry, StreamGate } from '../stream/connection-registry';
import { PriceStreamService } from '../stream/price-stream.service';
import { StreamHub } from '../stream/stream-hub';
import { TickLog } from '../stream/tick-log';
import { PrimaryModule } from './primary.module';

describe(PrimaryModule.name, () => {
  it('polls and publishes through the port without Redis, and builds no hub, registry or gate', async () => {
    const config = loadConfig({ PRICE_SOURCES: 'simulated', PAIRS: 'BTC-USD', POLL_INTERVAL_MS: '3600000', LOG_LEVEL: 'silent', CANDLE_BACKFILL: 'off' });
    const ticks: unknown[] = [];
    const ctx = await NestFactory.createApplicationContext(PrimaryModule.register(config, { tick: (tick) => ticks.push(tick), confirmation: () => undefined }), { logger: false });
    try {
      await ctx.get(PricePollerService).refresh();
      expect(ctx.get(PublishPort)).toBe(ctx.get(TickLog));
      expect(ctx.get(PriceStreamService)).toBeDefined(); // the channels the log delivers into (latest ticks, for the dedup)
      expect(ticks).toEqual([expect.objectContaining({ pair: 'BTC-USD', source: 'simulated' })]);
      for (const absent of [StreamHub, ConnectionRegistry, StreamGate]) expect(() => ctx.get(absent)).toThrow();
    } finally {
      await ctx.close();
    }
  });
});
