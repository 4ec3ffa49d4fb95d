import { startApp, type TestApp } from './support/app';
import { waitFor } from './support/wait';
import { captureLogs } from './support/logs';
import { metricSample as metric } from './support/metrics';

describe('operations', () => {
  let t: TestApp;
  const lines: string[] = [];
  beforeAll(async () => {
    const { destination: sink } = captureLogs(lines);
    t = await startApp({ LOG_LEVEL: 'info', RATE_LIMIT_PER_MINUTE: '5' }, { logDestination: sink });
  });
  afterAll(() => t.close());

  it('exports Prometheus metrics, with counters that move after real actions', async () => {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    const before = await metric(t.url, 'price_stream_ticks_published_total', { pair: 'BTC-USD' });
    await t.publish('BTC-USD', 123.5);
    expect(await metric(t.url, 'price_stream_ticks_published_total', { pair: 'BTC-USD' })).toBe(before + 1);
    expect(await metric(t.url, 'price_stream_history_size')).toBeGreaterThanOrEqual(1);
    expect(await metric(t.url, 'price_stream_latest_tick_age_seconds', { pair: 'BTC-USD' })).toBeLessThan(5);
  });

  it('rate-limits REST per client with 429 RATE_LIMITED and Retry-After, but never health or metrics', async () => {
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${t.url}/api/pairs`);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5);
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limited!.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    for (let i = 0; i < 8; i++) {
      expect((await fetch(`${t.url}/health/live`)).status).toBe(200);
      expect((await fetch(`${t.url}/metrics`)).status).toBe(200);
    }
  });

  it('ignores a spoofed X-Forwarded-For unless TRUST_PROXY is set', async () => {
    // The previous test used up this address' budget; another claimed address must not help.
    const res = await fetch(`${t.url}/api/pairs`, { headers: { 'X-Forwarded-For': '203.0.113.7' } });
    expect(res.status).toBe(429);
  });

  it('logs each request with its request id, returns it, and redacts credentials', async () => {
    const res = await fetch(`${t.url}/health/ready`, { headers: { 'X-Request-Id': 'req-e2e-42', Authorization: 'Bearer very-secret-token' } });
    expect(res.headers.get('x-request-id')).toBe('req-e2e-42');
    await fetch(`${t.url}/nope`, { headers: { 'X-Request-Id': 'req-e2e-43', Authorization: 'Bearer very-secret-token' } });
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.find((l) => l.includes('req-e2e-43'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ requestId: 'req-e2e-43', res: { statusCode: 404 } });
    expect(lines.join('\n')).not.toContain('very-secret-token');
    const generated = await fetch(`${t.url}/health/live`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('gives an SSE stream its request id and one log line when it closes (streams are outside the request logger), and a refusal one too', async () => {
    const res = await fetch(`${t.url}/api/prices/stream`, { headers: { 'X-Request-Id': 'sse-e2e-7' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('sse-e2e-7');
    // An event stream is not a document: no CSP or framing headers on it.
    expect(res.headers.get('content-security-policy')).toBeNull();
    await res.body!.cancel();
    const refused = await fetch(`${t.url}/api/prices/stream?pairs=NOPE-USD`, { headers: { 'X-Request-Id': 'sse-e2e-8' } });
    expect(refused.headers.get('x-request-id')).toBe('sse-e2e-8');
    await waitFor(() => lines.some((l) => l.includes('sse-e2e-7')));
    const closed = lines.filter((l) => l.includes('sse-e2e-7')).map((l) => JSON.parse(l));
    expect(closed).toEqual([expect.objectContaining({ msg: 'stream closed', transport: 'sse', requestId: 'sse-e2e-7', reason: 'client', durationMs: expect.any(Number) })]);
    const refusal = lines.find((l) => l.includes('sse-e2e-8'));
    expect(JSON.parse(refusal!)).toMatchObject({ msg: 'stream refused', requestId: 'sse-e2e-8', status: 400, code: 'UNSUPPORTED_PAIR' });
  });

  it('sends security headers with a CSP the client works under, and no CORS headers for other origins by default', async () => {
    const res = await fetch(`${t.url}/health/live`, { headers: { Origin: 'https://evil.example' } });
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self' ws: wss:");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('describes every REST route in /docs-json and serves the UI at /docs', async () => {
    const doc = (await (await fetch(`${t.url}/docs-json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths).sort()).toEqual(
      ['/api/admin/refresh', '/api/pairs', '/api/price/current', '/api/price/stream', '/api/prices/stream', '/stream', '/api/price/history', '/api/prices', '/api/prices/{pair}', '/api/prices/{pair}/history', '/api/prices/{pair}/candles', '/api/v1/ltp', '/api/v1/ltp/cached', '/api/v1/ltp/refresh'].sort(),
    );
    expect(Object.keys(doc.paths['/api/prices/{pair}'].get.responses)).toEqual(expect.arrayContaining(['200', '400', '404', '429']));
    const ui = await fetch(`${t.url}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('documents each operation with a summary, reusable schemas, JSON errors on the streams, and a plain bearer admin token', async () => {
    type Operation = { summary?: string; security?: unknown[]; responses: Record<string, { content?: Record<string, { schema?: unknown }> }> };
    const doc = (await (await fetch(`${t.url}/docs-json`)).json()) as {
      servers?: { url: string }[];
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, Record<string, unknown>> };
    };
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item));
    expect(operations).toHaveLength(14);
    expect(operations.filter((op) => !op.summary)).toEqual([]);
    expect(operations.filter((op) => !Array.isArray(op.security))).toEqual([]);
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Tick', 'Reset', 'Error', 'Candle', 'SseEvent']));
    expect(doc.paths['/api/prices/{pair}'].get.responses['200'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Tick' });
    const stream = doc.paths['/api/prices/stream'].get.responses;
    expect(Object.keys(stream['200'].content ?? {})).toEqual(['text/event-stream']);
    expect(stream['400'].content).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/Error' } } });
    expect(doc.components.securitySchemes['admin-token']).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    expect(doc.components.securitySchemes['admin-token'].bearerFormat).toBeUndefined();
    expect(doc.paths['/api/admin/refresh'].post.security).toEqual([{ 'admin-token': [] }]);
    // A subscriber token's refusals, on the streams and on REST under /api/ (noted as applying with tokens configured); not on the admin routes.
    type Described = Record<string, { description?: string }>;
    const token = { '401': ['UNAUTHORIZED', 'TOKEN_EXPIRED'], '403': ['PAIR_NOT_ENTITLED'], '503': ['AUTH_UNAVAILABLE'] };
    for (const [path, method] of [['/api/prices/stream', 'get'], ['/stream', 'get'], ['/api/prices/{pair}', 'get'], ['/api/pairs', 'get'], ['/api/v1/ltp', 'get'], ['/api/prices/{pair}/candles', 'get']]) {
      const responses = doc.paths[path][method].responses as Described;
      for (const [status, codes] of Object.entries(token)) {
        for (const code of codes) expect({ path, status, description: responses[status]?.description }).toEqual({ path, status, description: expect.stringContaining(code) });
        expect(responses[status]?.description).toContain('only with subscriber tokens configured');
      }
    }
    expect((stream as Described)['503'].description).toContain('SHUTTING_DOWN');
    expect((doc.paths['/api/admin/refresh'].post.responses as Described)['403']).toBeUndefined();
  });
});

describe('CORS', () => {
  it('allows exactly the origins in CORS_ORIGINS', async () => {
    const t = await startApp({ CORS_ORIGINS: 'https://app.example' });
    try {
      const ok = await fetch(`${t.url}/api/pairs`, { headers: { Origin: 'https://app.example' } });
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const other = await fetch(`${t.url}/api/pairs`, { headers: { Origin: 'https://other.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      // The SSE streams are served ahead of Express (SseEntry), with the same CORS answer.
      const stream = await fetch(`${t.url}/api/prices/stream`, { headers: { Origin: 'https://app.example' } });
      expect(stream.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(stream.headers.get('access-control-expose-headers')).toBe('X-Request-Id,Retry-After');
      await stream.body!.cancel();
      const otherStream = await fetch(`${t.url}/stream`, { headers: { Origin: 'https://other.example' } });
      expect(otherStream.headers.get('access-control-allow-origin')).toBeNull();
      await otherStream.body!.cancel();
    } finally {
      await t.close();
    }
  });
});

describe('request limits', () => {
  it('answers 414 URI_TOO_LONG for an over-long request target, on the streams too, and HEAD on a stream with its headers only', async () => {
    const t = await startApp();
    try {
      for (const path of ['/api/prices', '/api/prices/stream']) {
        const res = await fetch(`${t.url}${path}?pairs=${'B'.repeat(9000)}`);
        expect(res.status).toBe(414);
        expect(await res.json()).toMatchObject({ code: 'URI_TOO_LONG' });
      }
      // HEAD on a stream route: the headers of a stream, no body, nothing held open.
      const head = await fetch(`${t.url}/api/prices/stream`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    } finally {
      await t.close();
    }
  });
});

describe('stream metrics', () => {
  it('count subscribers, resumes, messages and slow disconnects after real actions', async () => {
    const { connect } = await import('node:net');
    const t = await startApp({ PAIRS: 'BTC-USD', CLIENT_BUFFER_SIZE: '5', HISTORY_SIZE: '100000' });
    try {
      const first = (await t.publish('BTC-USD', 1))!;
      await t.publish('BTC-USD', 2);
      // A resuming SSE subscriber that reads.
      const controller = new AbortController();
      const res = await fetch(`${t.url}/api/prices/stream`, { headers: { 'Last-Event-ID': first.id }, signal: controller.signal });
      const reader = res.body!.getReader();
      await reader.read();
      expect(await metric(t.url, 'price_stream_subscribers', { transport: 'sse' })).toBe(1);
      expect(await metric(t.url, 'price_stream_resumes_total', { outcome: 'recovered' })).toBe(1);
      await t.publish('BTC-USD', 3);
      await t.publish('BTC-USD', 4);
      await new Promise((r) => setTimeout(r, 50));
      // The replayed tick (2) is sent but not delivery lag: only the live ones (3, 4) are.
      expect(await metric(t.url, 'price_stream_messages_sent_total', { transport: 'sse' })).toBe(3);
      expect(await metric(t.url, 'price_stream_delivery_lag_seconds_count', { transport: 'sse' })).toBe(2);
      controller.abort();

      // A subscriber that never reads is cut off once the kernel buffers and its backlog are full.
      const stalled = connect(t.port, '127.0.0.1');
      stalled.on('error', () => undefined);
      stalled.write('GET /api/prices/stream HTTP/1.1\r\nHost: x\r\n\r\n');
      stalled.pause();
      await new Promise((r) => setTimeout(r, 100));
      let price = 10;
      while ((await metric(t.url, 'price_stream_disconnects_total', { transport: 'sse', reason: 'slow' })) === 0 && price < 200_000) {
        for (let i = 0; i < 5000; i++) await t.publish('BTC-USD', price++);
      }
      expect(await metric(t.url, 'price_stream_disconnects_total', { transport: 'sse', reason: 'slow' })).toBe(1);
      expect(await metric(t.url, 'price_stream_disconnects_total', { transport: 'sse', reason: 'client' })).toBe(1);
      stalled.destroy();
    } finally {
      await t.close();
    }
  }, 30000);

  it('count upstream requests by outcome for a failing source', async () => {
    const t = await startApp({ PRICE_SOURCES: 'kraken', KRAKEN_URL: 'http://127.0.0.1:9', POLL_INTERVAL_MS: '200', SOURCE_TIMEOUT_MS: '200' });
    try {
      const start = Date.now();
      while ((await metric(t.url, 'price_stream_upstream_requests_total', { source: 'kraken', outcome: 'network' })) === 0 && Date.now() - start < 3000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await metric(t.url, 'price_stream_upstream_requests_total', { source: 'kraken', outcome: 'network' })).toBeGreaterThanOrEqual(1);
      expect(await metric(t.url, 'price_stream_upstream_request_duration_seconds_count', { source: 'kraken' })).toBeGreaterThanOrEqual(1);
      expect(await metric(t.url, 'price_stream_source_circuit_state', { source: 'kraken' })).toBe(2);
    } finally {
      await t.close();
    }
  });
});
