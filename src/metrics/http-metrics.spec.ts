import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Histogram, Registry } from 'prom-client';
import { HttpMetrics, markRoute, methodLabel, routeOf, statusClass, UNMATCHED_ROUTE } from './http-metrics';

const request = (fields: Record<string, unknown> = {}) => ({ method: 'GET', url: '/api/prices/BTC-USD', ...fields }) as unknown as IncomingMessage;

describe('http metrics labels', () => {
  it('gives status classes, and `other` outside 100–599', () => {
    expect([200, 304, 404, 429, 503, 0, 600].map(statusClass)).toEqual(['2xx', '3xx', '4xx', '4xx', '5xx', 'other', 'other']);
  });

  it('keeps methods to a bounded set', () => {
    expect(['GET', 'HEAD', 'POST', 'PROPFIND', undefined].map(methodLabel)).toEqual(['GET', 'HEAD', 'POST', 'OTHER', 'OTHER']);
  });

  it('names the route template, never the raw path', () => {
    const marked = request();
    markRoute(marked, '/api/prices/:pair');
    expect(routeOf(marked)).toBe('/api/prices/:pair');
    expect(routeOf(request({ route: { path: '/api/candles/:pair' } }))).toBe('/api/candles/:pair');
    // The catch-all the request logger is mounted on, and no route at all.
    expect(routeOf(request({ url: '/wp-admin/x', route: { path: '{/*splat}' } }))).toBe(UNMATCHED_ROUTE);
    expect(routeOf(request({ url: '/anything/else' }))).toBe(UNMATCHED_ROUTE);
  });
});

describe(HttpMetrics.name, () => {
  it('observes a request when its response closes, by method, route and status class', async () => {
    const registry = new Registry();
    const histogram = new Histogram({ name: 'h', help: 'h', labelNames: ['method', 'route', 'status_class'] as const, registers: [registry] });
    const req = request({ url: '/unknown/123' });
    const res = Object.assign(new EventEmitter(), { statusCode: 404 }) as unknown as ServerResponse;
    new HttpMetrics(histogram).observe(req, res);
    expect((await histogram.get()).values.filter((v) => v.metricName === 'h_count')).toEqual([]);
    res.emit('close');
    const count = (await histogram.get()).values.filter((v) => v.metricName === 'h_count');
    expect(count).toEqual([expect.objectContaining({ value: 1, labels: { method: 'GET', route: UNMATCHED_ROUTE, status_class: '4xx' } })]);
  });

  it('records a request answered at once by its route template, its status class and the time given', async () => {
    const histogram = new Histogram({ name: 'r', help: 'r', labelNames: ['method', 'route', 'status_class'] as const, registers: [new Registry()] });
    new HttpMetrics(histogram).record('GET', '/api/prices', 206, 1.5);
    const values = (await histogram.get()).values;
    expect(values.filter((v) => v.metricName === 'r_count')).toEqual([expect.objectContaining({ value: 1, labels: { method: 'GET', route: '/api/prices', status_class: '2xx' } })]);
    expect(values.filter((v) => v.metricName === 'r_sum')).toEqual([expect.objectContaining({ value: 0.0015 })]);
  });
});
