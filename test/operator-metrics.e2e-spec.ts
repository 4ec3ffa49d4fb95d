import { PricePollerService } from '../src/ingest/price-poller.service';
import { startApp, type TestApp } from './support/app';

/** One sample of a metric whose labels include `labels`, 0 when absent. */
async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && want.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The metrics issue 24 added: request durations by route template, build info, leader and readiness. */
describe('operator metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    // The build info reads the process' environment, as in production.
    process.env.GIT_REVISION = 'cafe1234';
    t = await startApp();
  });
  afterAll(async () => {
    delete process.env.GIT_REVISION;
    await t.close();
  });

  const count = (labels: Record<string, string>) => metric(t.url, 'price_stream_http_request_duration_seconds_count', labels);

  it('exports the build, the leader and the readiness answer', async () => {
    expect(await metric(t.url, 'price_stream_build_info', { revision: 'cafe1234', node_version: process.version, version: '0.1.0' })).toBe(1);
    expect((await fetch(`${t.url}/health/ready`)).status).toBe(503); // no price yet
    expect(await metric(t.url, 'price_stream_ready')).toBe(0);
    // The poller is off (the test publishes): not a leader, until polling is on.
    expect(await metric(t.url, 'price_stream_leader')).toBe(0);
    t.app.get(PricePollerService).setEnabled(true);
    expect(await metric(t.url, 'price_stream_leader')).toBe(1);
    t.publish('BTC-USD', 97000);
    expect((await fetch(`${t.url}/health/ready`)).status).toBe(200);
    expect(await metric(t.url, 'price_stream_ready')).toBe(1);
    expect(await metric(t.url, 'price_stream_readiness_changes_total')).toBe(1);
  });

  it('times requests by route template and status class, on the fast paths and through Express, never by raw path', async () => {
    await fetch(`${t.url}/api/prices/BTC-USD`); // the edge router, ahead of Express
    await fetch(`${t.url}/api/prices/BTC-USD?x=1`); // a query: through Express' route
    await fetch(`${t.url}/api/prices/XRP-USD`); // not served: Express, 404
    await fetch(`${t.url}/wp-admin/setup-config.php`); // no route
    await fetch(`${t.url}/api/prices/stream?pairs=NOT-A-PAIR`); // SseEntry's refusal
    await fetch(`${t.url}/api/prices?pairs=BTC-USD`); // a list, ahead of Express
    await fetch(`${t.url}/api/v1/ltp?pair=nope`); // its 400, ahead of Express
    const text = await (await fetch(`${t.url}/metrics`)).text();
    expect(await count({ route: '/api/prices/:pair', status_class: '2xx', method: 'GET' })).toBe(2);
    expect(await count({ route: '/api/prices/:pair', status_class: '4xx' })).toBe(1);
    expect(await count({ route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(await count({ route: '/api/prices/stream', status_class: '4xx' })).toBe(1);
    expect(await count({ route: '/api/prices', status_class: '2xx' })).toBe(1);
    expect(await count({ route: '/api/v1/ltp', status_class: '4xx' })).toBe(1);
    expect(text).not.toContain('wp-admin');
    const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    expect([...routes].sort()).toEqual(['/api/prices', '/api/prices/:pair', '/api/prices/stream', '/api/v1/ltp', '/health/ready', '/metrics', 'unmatched']);
  });
});
