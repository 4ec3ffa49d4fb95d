import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { RedisTickLog } from '../redis/redis-tick-log';
import { RedisClients } from '../redis/redis.clients';
import { ConnectionRegistry, StreamGate } from './connection-registry';
import { MemoryTickLog } from './memory-tick-log';
import { PriceStreamService } from './price-stream.service';
import { PriceHealthIndicator } from './price.health';
import { StreamHub } from './stream-hub';
import { TickLog } from './tick-log';

@Module({
  imports: [TerminusModule],
  providers: [
    PriceHealthIndicator,
    ConnectionRegistry,
    {
      provide: TickLog,
      // With REDIS_URL, AppModule registers RedisModule (global), which provides RedisClients.
      useFactory: (config: AppConfig, redis?: RedisClients) => {
        if (!config.redisUrl) return new MemoryTickLog(config);
        if (!redis) throw new Error('REDIS_URL is set but RedisModule is not registered');
        return new RedisTickLog(redis, config);
      },
      inject: [AppConfig, { token: RedisClients, optional: true }],
    },
    PriceStreamService,
    StreamHub,
    StreamGate,
  ],
  exports: [PriceStreamService, PriceHealthIndicator, ConnectionRegistry, StreamGate, StreamHub, TickLog],
})
export class StreamModule {}
