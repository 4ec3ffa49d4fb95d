import { withDeadline } from '../common/deadline';
import { Controller, Get, Optional, ServiceUnavailableException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
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
            if (this.lifecycle.isShuttingDown) throw new Error('shutting down');
            return { state: 'running' };
          })
          .withTimeout(CHECK_TIMEOUT_MS),
      () => withDeadline(Promise.resolve(this.prices.check('prices')), CHECK_TIMEOUT_MS, 'the prices check'),
      () => withDeadline(Promise.resolve(this.sources.check('sources')), CHECK_TIMEOUT_MS, 'the sources check'),
      ...(this.redis ? [() => withDeadline(this.redis!.check('redis'), CHECK_TIMEOUT_MS, 'the redis check')] : []),
    ]);
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
