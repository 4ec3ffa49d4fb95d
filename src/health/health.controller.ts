import { withDeadline } from '../util/deadline';
import { Controller, Get, Optional, ServiceUnavailableException } from '@nestjs/common';
import { ApiExcludeController } from '../http/api-docs';
import { SkipThrottle } from '@nestjs/throttler';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { PassthroughException } from '../http/api-error';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { MetricsService } from '../metrics/metrics.service';
import { SourcesHealthIndicator } from '../ingest/sources.health';
import { RedisHealthIndicator } from '../redis/redis.health';
import { PriceHealthIndicator } from '../stream/price.health';

/** The BTC LTP Service's probe body; `services`: each check's `up` or `down`. */
type LegacyHealth = { status: 'healthy' | 'ready' | 'unhealthy'; timestamp: string; services: Record<string, string> };

/** Each check gives up after this long and counts as down. */
export const CHECK_TIMEOUT_MS = 1000;

/**
 * Terminus' marker, without its OpenAPI part: that would load @nestjs/swagger at start-up
 * (http/api-docs.ts), and the probes are left out of the document anyway (ApiExcludeController).
 */
const HEALTH_CHECK = { noCache: true, swaggerDocumentation: false };

@ApiExcludeController()
@SkipThrottle()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly prices: PriceHealthIndicator,
    private readonly sources: SourcesHealthIndicator,
    private readonly lifecycle: LifecycleService,
    private readonly metrics: MetricsService,
    /** Only with Redis (REDIS_URL or REDIS_SENTINELS). */
    @Optional() private readonly redis?: RedisHealthIndicator,
  ) {}

  /** The process is up. Never looks at upstreams or Redis. */
  @Get('health/live')
  @HealthCheck(HEALTH_CHECK)
  live() {
    return this.report([]);
  }

  @Get('health/ready')
  @HealthCheck(HEALTH_CHECK)
  async ready() {
    try {
      const result = await this.report(this.readinessChecks());
      this.metrics.readiness(true);
      return result;
    } catch (err) {
      if (err instanceof PassthroughException) this.metrics.readiness(false);
      throw err;
    }
  }

  /**
   * The BTC LTP Service's liveness route: always 200 `healthy` while the process runs; `services`
   * shows each readiness check's state for information (it never fails on them).
   */
  @Get('health')
  async legacyHealth(): Promise<LegacyHealth> {
    const { services } = await this.legacyReport();
    return { status: 'healthy', timestamp: new Date().toISOString(), services };
  }

  /** The BTC LTP Service's readiness route: 200 `ready`, or 503 `unhealthy`, by the same checks as /health/ready. */
  @Get('ready')
  async legacyReady(): Promise<LegacyHealth> {
    const { ok, services } = await this.legacyReport();
    const body: LegacyHealth = { status: ok ? 'ready' : 'unhealthy', timestamp: new Date().toISOString(), services };
    if (!ok) throw new PassthroughException(body, 503);
    return body;
  }

  private async legacyReport(): Promise<{ ok: boolean; services: Record<string, string> }> {
    let ok = true;
    let details: Record<string, { status: string }>;
    try {
      details = (await this.health.check(this.readinessChecks())).details;
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      ok = false;
      details = (err.getResponse() as { details?: Record<string, { status: string }> }).details ?? {};
    }
    this.metrics.readiness(ok);
    return { ok, services: Object.fromEntries(Object.entries(details).map(([name, d]) => [name, d.status])) };
  }

  private readinessChecks(): Parameters<HealthCheckService['check']>[0] {
    return [
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
    ];
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
