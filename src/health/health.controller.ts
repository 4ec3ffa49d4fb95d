import { withDeadline } from '../common/deadline';
import { Controller, Get, Optional, ServiceUnavailableException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { PassthroughException } from '../common/api-error';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { SourcesHealthIndicator } from '../poller/sources.health';
import { RedisHealthIndicator } from '../redis/redis.health';
import { PriceHealthIndicator } from '../stream/price.health';

/** Each check gives up after this long and counts as down. */
export const CHECK_TIMEOUT_MS = 1000;

@ApiExcludeController()
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly prices: PriceHealthIndicator,
    private readonly sources: SourcesHealthIndicator,
    private readonly lifecycle: LifecycleService,
    /** Only with REDIS_URL. */
    @Optional() private readonly redis?: RedisHealthIndicator,
  ) {}

  /** The process is up. Never looks at upstreams or Redis. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.report([]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.report([
      () =>
        this.indicators
          .check('lifecycle')
          .attempt(() => {
            if (!this.lifecycle.isReady) throw new Error(this.lifecycle.isShuttingDown ? 'shutting down' : 'stopping (SHUTDOWN_DELAY_MS)');
            return { state: 'running' };
          })
          .withTimeout(CHECK_TIMEOUT_MS),
      this.bounded('prices', () => this.prices.check('prices')),
      this.bounded('sources', () => this.sources.check('sources')),
      ...(this.redis ? [this.bounded('redis', () => this.redis!.check('redis'))] : []),
    ]);
  }

  /** A check that fails or overruns CHECK_TIMEOUT_MS reports itself down (Terminus would turn a rejection into a 500). */
  private bounded(key: string, work: () => HealthIndicatorResult | Promise<HealthIndicatorResult>): () => Promise<HealthIndicatorResult> {
    return () =>
      withDeadline(Promise.resolve().then(work), CHECK_TIMEOUT_MS, `the ${key} check`).catch((err: unknown) =>
        this.indicators.check(key).down({ message: err instanceof Error ? err.message : 'check failed' }),
      );
  }

  /** A down report is answered 503 with Terminus' own body (status, info, error, details). */
  private async report(checks: Parameters<HealthCheckService['check']>[0]) {
    try {
      return await this.health.check(checks);
    } catch (err) {
      if (err instanceof ServiceUnavailableException) throw new PassthroughException(err.getResponse(), 503);
      throw err;
    }
  }
}
