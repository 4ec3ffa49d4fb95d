import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { HttpMetrics } from '../metrics/http-metrics';
import { answeredRequestLog, requestLogMiddleware, requestLogMixin, responseLevel } from './request-log';

function fakeExchange(url = '/api/prices/BTC-USD', headers: Record<string, string> = {}) {
  const req = Object.assign(new EventEmitter(), { method: 'GET', url, headers, socket: { remoteAddress: '127.0.0.1' }, readableAborted: false }) as unknown as IncomingMessage;
  const set = new Map<string, unknown>();
  const res = Object.assign(new EventEmitter(), { statusCode: 200, writableEnded: true, setHeader: (k: string, v: unknown) => set.set(k.toLowerCase(), v) }) as unknown as ServerResponse;
  return { req, res, set };
}

function logger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level, mixin: requestLogMixin }, sink), lines };
}

describe(requestLogMiddleware.name, () => {
  it('sets the request id, and logs one access line when the response closes at a level that is on', () => {
    const { log, lines } = logger('info');
    const { req, res, set } = fakeExchange('/x', { 'x-request-id': 'abc-1' });
    let inside: ReturnType<typeof requestLogMixin> | undefined;
    requestLogMiddleware({ logger: () => log, quiet: () => false })(req, res, () => (inside = requestLogMixin()));
    expect(set.get('x-request-id')).toBe('abc-1');
    expect(inside).toEqual({ requestId: 'abc-1', req });
    res.statusCode = 404;
    res.emit('close');
    expect(lines).toEqual([expect.objectContaining({ level: 40, requestId: 'abc-1', msg: 'request completed' })]);
  });

  it('writes nothing for a 2xx at LOG_LEVEL=warn, and adds no listener when even errors are off', () => {
    const warn = logger('warn');
    const ok = fakeExchange();
    requestLogMiddleware({ logger: () => warn.log, quiet: () => false })(ok.req, ok.res, () => undefined);
    ok.res.emit('close');
    expect(warn.lines).toEqual([]);
    const silent = logger('silent');
    const quiet = fakeExchange();
    requestLogMiddleware({ logger: () => silent.log, quiet: () => false })(quiet.req, quiet.res, () => undefined);
    expect(quiet.res.listenerCount('close')).toBe(0);
    expect(quiet.set.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('has no access line for quiet paths', () => {
    const { log, lines } = logger('info');
    const { req, res } = fakeExchange('/health/live');
    requestLogMiddleware({ logger: () => log, quiet: (url) => url.startsWith('/health/') })(req, res, () => undefined);
    res.emit('close');
    expect(lines).toEqual([]);
  });

  it('uses pino-http levels: 5xx error, 4xx warn, else info', () => {
    expect([responseLevel(503), responseLevel(429), responseLevel(304), responseLevel(200, new Error('x'))]).toEqual(['error', 'warn', 'info', 'error']);
  });
});

describe(answeredRequestLog.name, () => {
  it('records the request by its route template and logs its access line at once, when the level is on', () => {
    const recorded: unknown[][] = [];
    const http = { record: (...args: unknown[]) => recorded.push(args) } as unknown as HttpMetrics;
    const info = logger('info');
    const { req, res } = fakeExchange('/api/prices?pairs=BTC-USD');
    answeredRequestLog({ logger: () => info.log, quiet: () => false, http })(req, res, 'abc-2', '/api/prices', performance.now());
    expect(recorded).toEqual([['GET', '/api/prices', 200, expect.any(Number)]]);
    expect(info.lines).toEqual([expect.objectContaining({ level: 30, requestId: 'abc-2', msg: 'request completed', res: expect.objectContaining({ statusCode: 200 }) })]);
    expect(res.listenerCount('close')).toBe(0);
  });

  it('writes nothing for a 2xx at LOG_LEVEL=warn, a 4xx at warn, and nothing for quiet paths', () => {
    const warn = logger('warn');
    const ok = fakeExchange();
    const log = answeredRequestLog({ logger: () => warn.log, quiet: (url) => url.startsWith('/health/') });
    log(ok.req, ok.res, 'a', '/api/prices/:pair', performance.now());
    expect(warn.lines).toEqual([]);
    const refused = fakeExchange();
    refused.res.statusCode = 429;
    log(refused.req, refused.res, 'b', '/api/prices/:pair', performance.now());
    expect(warn.lines).toEqual([expect.objectContaining({ level: 40, requestId: 'b', msg: 'request completed' })]);
    const probe = fakeExchange('/health/live');
    probe.res.statusCode = 503;
    log(probe.req, probe.res, 'c', '/health/live', performance.now());
    expect(warn.lines).toHaveLength(1);
  });
});
