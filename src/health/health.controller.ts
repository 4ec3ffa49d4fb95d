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
      () => withTimeout(Promise.resolve(this.prices.check('prices')), CHECK_TIMEOUT_MS, 'prices'),
      () => withTimeout(Promise.resolve(this.sources.check('sources')), CHECK_TIMEOUT_MS, 'sources'),
      ...(this.redis ? [() => withTimeout(this.redis!.check('redis'), CHECK_TIMEOUT_MS, 'redis')] : []),
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

/** Runs a check that reports its own up/down, and counts it as down when it overruns. */
export async function withTimeout<T>(check: Promise<T>, ms: number, key: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${key} check timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([check, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
