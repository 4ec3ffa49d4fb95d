import { Inject, Injectable, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { getOptionsToken, getStorageToken, normalizeIp, ThrottlerException, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import proxyaddr from 'proxy-addr';
import { toErrorBody } from '../http/api-exception.filter';
import { checkPair } from '../domain/pair';
import { MAX_URL_LENGTH } from '../http/query';
import { strictSecurityHeaders } from '../http/security-headers';
import { throttlerKey, WindowThrottlerStorage } from '../http/window-throttler.storage';
import { AppConfig } from '../config/app-config';
import { requestLogger } from '../logging/logging.module';
import { markRoute } from '../metrics/http-metrics';
import { MetricsService } from '../metrics/metrics.service';
import { LEGACY_PAIR } from '../shared/wire';
import { SSE_ROUTE_TABLE } from '../sse/sse-routes';
import { LegacyController } from './legacy.controller';
import { isFresh, type CachedBody } from './latest-body';
import { PricesController } from './prices.controller';
import { PricesService } from './prices.service';
import { simpleCors } from '../http/cors';

const PAIR_PREFIX = '/api/prices/';
const LEGACY_CURRENT = '/api/price/current';

type Throttler = { name: string; ttl: number; limit: number; blockDuration: number };
type Route = { body: CachedBody; template: string; handler: { getClass(): { name: string }; getHandler(): { name: string } } };
type ExpressApp = { get(setting: 'trust proxy fn'): (addr: string, i: number) => boolean };

/**
 * The answers dashboards and bots poll, `GET /api/prices/:pair` and `GET /api/price/current`
 * with a price to give, taken off the HTTP server ahead of Express (as SseEntry does for the
 * streams). Through Express and Nest a request cost ~0.25 ms of CPU, most of it the router's
 * layers, Nest's execution context and promise chain, and the response helpers; the answer itself
 * is a body built once per tick. Everything a client sees is the same as from the controllers:
 * the request id and access line (`requestLogger`), helmet's headers (the same middleware), CORS
 * for CORS_ORIGINS, the rate limit (the same storage, key and X-RateLimit-* headers as the
 * ThrottlerGuard, 429 RATE_LIMITED with Retry-After), ETag and 304. Anything else — HEAD, a query,
 * an escaped or invalid pair, no price yet, a long target — goes on to Express, whose routes
 * answer it (and document all of it in OpenAPI).
 */
@Injectable()
export class LatestEntry implements OnApplicationBootstrap {
  private readonly logRequest: ReturnType<typeof requestLogger>;
  private throttlers: Throttler[] = [];
  private hit: (key: string, t: Throttler) => ReturnType<WindowThrottlerStorage['hit']> = () => {
    throw new Error('not bootstrapped');
  };

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly prices: PricesService,
    private readonly config: AppConfig,
    @Inject(getStorageToken()) private readonly storage: ThrottlerStorage,
    @Inject(getOptionsToken()) private readonly throttlerOptions: ThrottlerModuleOptions,
    @Optional() metrics?: MetricsService,
  ) {
    this.logRequest = requestLogger(metrics?.http);
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    // The fast path counts hits synchronously in the storage the guard uses; with another one
    // (none is configured) every request goes through the guard.
    if (!server || !(this.storage instanceof WindowThrottlerStorage)) return;
    const storage = this.storage;
    this.hit = (key, t) => storage.hit(key, t.ttl, t.limit, t.blockDuration);
    const options = this.throttlerOptions;
    this.throttlers = (Array.isArray(options) ? options : options.throttlers).map((t) => {
      const ttl = Number(t.ttl);
      return { name: t.name ?? 'default', ttl, limit: Number(t.limit), blockDuration: Number(t.blockDuration ?? ttl) };
    });
    const others = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const route = req.method === 'GET' ? this.route(req.url) : undefined;
      if (route) {
        markRoute(req, route.template);
        this.logRequest(req, res, () => this.answer(req, res, route));
      }
      else for (const listener of others) listener.call(server, req, res);
    });
  }

  /** The route and its body when this request is one the fast path answers with a price. */
  route(url: string | undefined): Route | undefined {
    if (url === undefined || url.length > MAX_URL_LENGTH || url.includes('?') || url.includes('%')) return undefined;
    if (url === LEGACY_CURRENT) {
      if (!this.config.pairSet.has(LEGACY_PAIR) || !this.prices.hasLatest(LEGACY_PAIR)) return undefined;
      return { body: this.prices.legacyCurrentBody(LEGACY_PAIR), template: LEGACY_CURRENT, handler: LEGACY_CURRENT_HANDLER };
    }
    if (!url.startsWith(PAIR_PREFIX) || SSE_ROUTE_TABLE.has(url)) return undefined;
    const raw = url.slice(PAIR_PREFIX.length);
    if (raw === '' || raw.includes('/')) return undefined;
    const check = checkPair(raw, this.config.pairSet, 404);
    if (!check.ok || !this.prices.hasLatest(check.pair)) return undefined;
    return { body: this.prices.latestBody(check.pair), template: '/api/prices/:pair', handler: PAIR_HANDLER };
  }

  private answer(req: IncomingMessage, res: ServerResponse, route: Route): void {
    strictSecurityHeaders(req, res, () => {
      simpleCors(req, res, this.config.corsOrigins);
      if (!this.throttle(req, res, route)) return;
      const { body } = route;
      res.setHeader('ETag', body.etag);
      if (isFresh(req.headers, body.etag)) {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', body.length);
      res.end(body.json);
    });
  }

  /** What ThrottlerGuard does for these routes; false when the request was answered 429. */
  private throttle(req: IncomingMessage, res: ServerResponse, route: Route): boolean {
    if (this.throttlers.length === 0) return true;
    const trust = (this.adapterHost.httpAdapter.getInstance() as ExpressApp).get('trust proxy fn');
    const tracker = normalizeIp(proxyaddr(req, trust));
    for (const t of this.throttlers) {
      const key = throttlerKey(route.handler, tracker, t.name);
      const record = this.hit(key, t);
      const suffix = t.name === 'default' ? '' : `-${t.name}`;
      if (record.isBlocked) {
        res.setHeader(`Retry-After${suffix}`, record.timeToBlockExpire);
        const json = JSON.stringify(toErrorBody(new ThrottlerException()));
        res.writeHead(429, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
        res.end(json);
        return false;
      }
      res.setHeader(`X-RateLimit-Limit${suffix}`, t.limit);
      res.setHeader(`X-RateLimit-Remaining${suffix}`, Math.max(0, t.limit - record.totalHits));
      res.setHeader(`X-RateLimit-Reset${suffix}`, record.timeToExpire);
    }
    return true;
  }
}

/** The controller methods whose rate-limit budget the fast path shares (the guard keys by class and handler). */
const PAIR_HANDLER = { getClass: () => PricesController, getHandler: () => PricesController.prototype.one };
const LEGACY_CURRENT_HANDLER = { getClass: () => LegacyController, getHandler: () => LegacyController.prototype.current };
