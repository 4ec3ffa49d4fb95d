import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { killStillRunning, spawnMain, type MainProcess } from './support/main-process';
import { deletePrefix, freePort, randomPrefix, REDIS_URL } from './support/redis';
import { waitFor } from './support/wait';

/**
 * deploy/grafana and deploy/prometheus query only metrics the service exports: every name a
 * dashboard panel or an alert rule uses must be in a real scrape of `node dist/main.js`, started
 * as an operator would (simulated source), once alone and once with WORKERS=2 and REDIS_URL (the
 * leader, worker and Redis families). `promtool check rules`/`test rules` run in .ci/run.
 */
const root = path.join(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

/** Every series name an exposition offers: each family, and a histogram's _bucket/_sum/_count. */
export function seriesNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** The metric names a PromQL expression reads (the service's and Node's families). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\b(?:price_stream|nodejs|process)_[A-Za-z0-9_]+/g) ?? [])];
}

type Panel = { title: string; type: string; targets?: { expr: string }[]; panels?: Panel[] };
const dashboardExprs = (): { where: string; expr: string }[] => {
  const dashboard = JSON.parse(read('deploy/grafana/price-stream.json')) as { panels: Panel[] };
  const all = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return all.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
};
const alertExprs = (): { where: string; expr: string }[] => {
  const rules = yaml.load(read('deploy/prometheus/alerts.yaml')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
};

async function scrape(env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const main: MainProcess = spawnMain({ PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '500', LOG_LEVEL: 'warn', ...env });
  try {
    const url = `http://127.0.0.1:${port}`;
    // Ready: a price is in, so every per-pair and per-source family has its series.
    await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.status === 200, 45_000, main.output);
    await fetch(`${url}/api/prices/BTC-USD`);
    return await (await fetch(`${url}/metrics`)).text();
  } finally {
    main.proc.kill('SIGTERM');
    await main.exited;
  }
}

describe('deploy artifacts query metrics the service exports', () => {
  let exported: Set<string>;
  const prefix = randomPrefix();

  beforeAll(async () => {
    const single = await scrape({});
    const cluster = await scrape({ WORKERS: '2', REDIS_URL, REDIS_PREFIX: prefix });
    exported = new Set([...seriesNames(single), ...seriesNames(cluster)]);
  }, 120_000);

  afterAll(() => deletePrefix(prefix));
  // scrape() stops its service in its `finally`, which a beforeAll jest times out never reaches.
  afterAll(killStillRunning);

  it('reads families, and histogram series, from an exposition', () => {
    const names = seriesNames('# TYPE a_seconds histogram\n# TYPE b_total counter\nb_total 1\n');
    expect([...names].sort()).toEqual(['a_seconds', 'a_seconds_bucket', 'a_seconds_count', 'a_seconds_sum', 'b_total']);
    expect(metricNames('sum by (le) (rate(price_stream_x_bucket{job="a"}[5m])) / nodejs_y')).toEqual(['price_stream_x_bucket', 'nodejs_y']);
  });

  it('has the families the dashboard and alerts rely on, in a real scrape', () => {
    for (const name of ['price_stream_http_request_duration_seconds_bucket', 'price_stream_build_info', 'price_stream_leader', 'price_stream_worker_restarts_total', 'price_stream_redis_tail_lag_seconds']) {
      expect(exported).toContain(name);
    }
  });

  it.each([
    ['every dashboard panel', dashboardExprs],
    ['every alert rule', alertExprs],
  ])('%s queries only exported metrics', (_what, exprs) => {
    const queries = exprs();
    expect(queries.length).toBeGreaterThan(5);
    const missing: string[] = [];
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      if (names.length === 0) missing.push(`${where}: no metric name in ${expr}`);
      for (const name of names) if (!exported.has(name)) missing.push(`${where}: ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it('has a well-formed dashboard: unique panel ids, every query on the data source variable', () => {
    const dashboard = JSON.parse(read('deploy/grafana/price-stream.json')) as { uid: string; panels: (Panel & { id: number; datasource?: { uid: string } })[]; templating: { list: { name: string }[] } };
    expect(dashboard.uid).toBe('price-stream');
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job']);
    expect(dashboard.panels.filter((p) => p.type !== 'row' && p.datasource?.uid !== '${datasource}').map((p) => p.title)).toEqual([]);
  });

  it('has a dashboard panel for each of the operator questions the issue lists', () => {
    const exprs = dashboardExprs().map((q) => q.expr).join('\n');
    for (const name of [
      'price_stream_subscribers',
      'price_stream_ticks_published_total',
      'price_stream_delivery_lag_seconds_bucket',
      'price_stream_slow_subscribers_total',
      'price_stream_resumes_total',
      'price_stream_source_circuit_state',
      'price_stream_http_request_duration_seconds_bucket',
      'price_stream_http_request_duration_seconds_count',
      'nodejs_eventloop_lag_p99_seconds',
      'price_stream_leader',
      'price_stream_redis_tail_lag_seconds',
    ]) {
      expect(exprs).toContain(name);
    }
  });
});
