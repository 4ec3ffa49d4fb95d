import { createServer, type RequestListener, type Server } from 'http';
import type { AddressInfo } from 'net';
import { fetchJson, MAX_RETRY_AFTER_MS, parseRetryAfter } from './http-fetch';
import { sourceErrorOf } from '../../test/support/source-error';

const OPTIONS = { timeoutMs: 500, maxBytes: 4096 };

describe(fetchJson.name, () => {
  let server: Server;
  let url: string;
  let handler: RequestListener;

  beforeAll(async () => {
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });


  it('returns the parsed body and sends the given headers when the answer is a 200 with JSON', async () => {
    let auth: string | undefined;
    handler = (req, res) => {
      auth = req.headers.authorization;
      res.end('{"a":[1,"2"]}');
    };
    await expect(fetchJson('kraken', url, { ...OPTIONS, headers: { authorization: 'Apikey k' } })).resolves.toEqual({ a: [1, '2'] });
    expect(auth).toBe('Apikey k');
  });

  it('throws http_status with the status when the answer is not a 200', async () => {
    handler = (_req, res) => {
      res.statusCode = 503;
      res.end('{"error":"down"}');
    };
    const err = await sourceErrorOf(fetchJson('coinbase', url, OPTIONS));
    expect([err.kind, err.status, err.source]).toEqual(['http_status', 503, 'coinbase']);
  });

  it('throws rate_limited with retryAfterMs when the answer is a 429 with Retry-After in seconds', async () => {
    handler = (_req, res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.end('{"error":"slow down"}');
    };
    const err = await sourceErrorOf(fetchJson('coingecko', url, OPTIONS));
    expect([err.kind, err.retryAfterMs]).toEqual(['rate_limited', 7000]);
  });

  it('throws rate_limited without retryAfterMs when a 429 has no Retry-After', async () => {
    handler = (_req, res) => {
      res.statusCode = 429;
      res.end();
    };
    const err = await sourceErrorOf(fetchJson('coingecko', url, OPTIONS));
    expect(err.kind).toBe('rate_limited');
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('throws timeout when no answer comes within timeoutMs', async () => {
    handler = () => undefined;
    const started = Date.now();
    const err = await sourceErrorOf(fetchJson('kraken', url, { ...OPTIONS, timeoutMs: 100 }));
    expect(err.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('throws timeout when the body stalls after the headers', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"a":');
    };
    const err = await sourceErrorOf(fetchJson('kraken', url, { ...OPTIONS, timeoutMs: 150 }));
    expect(err.kind).toBe('timeout');
  });

  it('rejects with the caller reason, not a SourceError, when the caller aborts', async () => {
    handler = () => undefined;
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const pending = fetchJson('kraken', url, { ...OPTIONS, timeoutMs: 5000, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
  });

  it('throws network when nothing listens on the port', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await sourceErrorOf(fetchJson('kraken', `http://127.0.0.1:${port}/`, OPTIONS));
    expect(err.kind).toBe('network');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('throws too_large when Content-Length is over maxBytes', async () => {
    handler = (_req, res) => res.end(JSON.stringify({ pad: 'x'.repeat(5000) }));
    const err = await sourceErrorOf(fetchJson('kraken', url, OPTIONS));
    expect(err.kind).toBe('too_large');
  });

  it('throws too_large when a chunked body grows past maxBytes', async () => {
    let written = 0;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"pad":"');
      const timer = setInterval(() => {
        written += 1024;
        if (!res.write('x'.repeat(1024)) && written > 1_000_000) clearInterval(timer);
      }, 1);
      res.on('close', () => clearInterval(timer));
    };
    const err = await sourceErrorOf(fetchJson('kraken', url, OPTIONS));
    expect(err.kind).toBe('too_large');
    expect(written).toBeLessThan(200 * 1024);
  });

  it('throws bad_json when the body is not JSON', async () => {
    handler = (_req, res) => res.end('<html>oops</html>');
    const err = await sourceErrorOf(fetchJson('kraken', url, OPTIONS));
    expect(err.kind).toBe('bad_json');
  });

  it('throws bad_json when the body is empty', async () => {
    handler = (_req, res) => res.end();
    const err = await sourceErrorOf(fetchJson('kraken', url, OPTIONS));
    expect(err.kind).toBe('bad_json');
  });
});

describe(parseRetryAfter.name, () => {
  const now = Date.parse('2026-11-21T21:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
  });

  it('reads an HTTP date as the time left until it', () => {
    expect(parseRetryAfter('Sat, 21 Nov 2026 21:00:30 GMT', now)).toBe(30_000);
  });

  it('gives 0 for an HTTP date in the past', () => {
    expect(parseRetryAfter('Sat, 21 Nov 2026 20:00:00 GMT', now)).toBe(0);
  });

  it('gives undefined when the header is absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  it('caps absurd values at MAX_RETRY_AFTER_MS', () => {
    expect(parseRetryAfter('99999999', now)).toBe(MAX_RETRY_AFTER_MS);
  });
});
