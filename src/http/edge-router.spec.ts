import { EventEmitter } from 'node:events';
import type { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { loadConfig } from '../config/app-config';
import type { StreamGate } from '../stream/connection-registry';
import * as plain from '../ws/plain-request';
import { EdgeRouter, JOIN_GATHER_MS } from './edge-router';
import { EDGE_ROUTES, edgeRoute } from './edge-routes';
import { FastRest } from './fast-rest';
import { WRITE_PACE } from '../util/sliced-pass';
import type { RestRateLimit } from './rate-limit';

/** An HTTP server with Express and engine.io (here: recording listeners) already attached, and the router over them. */
function setup() {
  const server = new EventEmitter();
  const seen: string[] = [];
  server.on('request', (req: IncomingMessage) => seen.push(`express ${req.method} ${req.url}`));
  server.on('upgrade', (req: IncomingMessage) => seen.push(`engine.io ${req.url}`));
  const host = { httpAdapter: { getHttpServer: () => server } } as unknown as HttpAdapterHost;
  const router = new EdgeRouter(host, {} as RestRateLimit, loadConfig({}), {} as StreamGate);
  const hooks: { sse?: (url: string) => void } = {};
  router.serve('stream', 'sse', (req, _res, route) => {
    hooks.sse?.(req.url!);
    seen.push(`sse ${req.url} ${JSON.stringify(route)}`);
  });
  router.serve('upgrade', 'websocket', (req, _socket, _head, route) => seen.push(`websocket ${req.url} ${route.path}`));
  router.serve('rest', 'prices', () => undefined);
  router.serve('rest', 'latest', () => ({ json: '{}' }));
  router.serve('rest', 'legacyCurrent', () => undefined);
  router.serve('rest', 'ltp', () => undefined);
  jest.spyOn(FastRest.prototype, 'serve').mockImplementation((req, _res, route, handler) => {
    const answer = handler({ path: req.url!, query: undefined }, req);
    if (answer) seen.push(`fast ${req.url} ${route.template}`);
    return answer !== undefined;
  });
  jest.spyOn(plain, 'serveWithoutUpgrade').mockImplementation((_server, req) => void seen.push(`plain ${req.url}`));
  router.onApplicationBootstrap();
  const request = (method: string, url: string, socket?: { destroy(): void }) => server.emit('request', { method, url, socket } as unknown as IncomingMessage, {} as ServerResponse);
  const upgrade = (url: string, upgrade = 'websocket') => {
    const socket = new EventEmitter() as unknown as Duplex;
    server.emit('upgrade', { method: 'GET', url, headers: { upgrade } } as unknown as IncomingMessage, socket, Buffer.alloc(0));
    return socket;
  };
  return { server, seen, request, upgrade, hooks };
}

afterEach(() => jest.restoreAllMocks());
const turn = () => new Promise((resolve) => setImmediate(resolve));
/** Until the joins gathered since the first one was read have started (their first slice). */
const gathered = () => new Promise((resolve) => setTimeout(resolve, JOIN_GATHER_MS));

describe(EdgeRouter.name, () => {
  it('takes GET requests for the stream routes ahead of Express, and hands everything else on', () => {
    // A fake clock: on a busy machine a real turn can outlast JOIN_GATHER_MS (CI saw it).
    jest.useFakeTimers();
    try {
      const { server, seen, request } = setup();
      request('GET', '/api/prices/stream?pairs=BTC-USD');
      request('GET', '/api/price/stream');
      request('GET', '/stream?lastEventId=1-0');
      request('POST', '/api/prices/stream');
      request('HEAD', '/stream');
      request('GET', '/api/prices/stream/');
      // Streams start together once JOIN_GATHER_MS have passed (in slices, in order); the rest at once.
      expect(seen).toEqual(['express POST /api/prices/stream', 'express HEAD /stream', 'express GET /api/prices/stream/']);
      jest.advanceTimersByTime(JOIN_GATHER_MS - 1);
      expect(seen).toHaveLength(3);
      jest.advanceTimersByTime(1);
      expect(seen).toEqual([
        'express POST /api/prices/stream',
        'express HEAD /stream',
        'express GET /api/prices/stream/',
        'sse /api/prices/stream?pairs=BTC-USD {"kind":"price"}',
        'sse /api/price/stream {"kind":"legacy","defaultPair":"BTC-USD"}',
        'sse /stream?lastEventId=1-0 {"kind":"message","defaultPair":"BTC-USD"}',
      ]);
      expect(server.listenerCount('request')).toBe(1);
    } finally {
      jest.useRealTimers();
    }
  });

  it('answers the fast REST rows whose handler has an answer; declined ones, and other methods, go to Express', () => {
    const { seen, request } = setup();
    request('GET', '/api/prices/BTC-USD');
    request('GET', '/api/prices');
    request('GET', '/api/v1/ltp');
    request('GET', '/api/prices/BTC-USD/history');
    request('HEAD', '/api/prices/BTC-USD');
    expect(seen).toEqual(['fast /api/prices/BTC-USD /api/prices/:pair', 'express GET /api/prices', 'express GET /api/v1/ltp', 'express GET /api/prices/BTC-USD/history', 'express HEAD /api/prices/BTC-USD']);
  });

  it('owns every upgrade socket and hands it to its row: the WebSocket feed, engine.io, or the plain request it also is', async () => {
    const { server, seen, upgrade } = setup();
    const sockets = [upgrade('/api/prices/ws?pairs=BTC-USD'), upgrade('/api/ws'), upgrade('/api/./prices/ws'), upgrade('/socket.io/?EIO=4&transport=websocket'), upgrade('/api/prices/ws', 'h2c'), upgrade('/api/pairs', 'h2c')];
    for (const socket of sockets) expect(socket.listenerCount('error')).toBe(1);
    expect(seen).toEqual(['plain /api/prices/ws', 'plain /api/pairs']);
    await gathered();
    expect(seen.slice(2)).toEqual(['websocket /api/prices/ws?pairs=BTC-USD /api/prices/ws', 'websocket /api/ws /api/ws', 'websocket /api/./prices/ws /api/prices/ws', 'engine.io /socket.io/?EIO=4&transport=websocket']);
    expect(server.listenerCount('upgrade')).toBe(1);
  });

  it('starts stream joins gathered for JOIN_GATHER_MS, in slices of the write pace with the event loop in between; one that throws loses its connection only', async () => {
    // The gather's timer on a fake clock: a real one of the test's, set a moment after the
    // router's, could fire a turn later on a busy machine, after every slice had run (CI saw it).
    // The slices' turns (setImmediate) stay real.
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    try {
      const { seen, request, hooks } = setup();
      let clock = 0;
      jest.spyOn(WRITE_PACE, 'now').mockImplementation(() => clock);
      // Each join takes 4 ms of the 10 ms budget: three per slice.
      hooks.sse = () => (clock += 4);
      for (let i = 0; i < 7; i++) request('GET', `/api/prices/stream?n=${i}`);
      const started = () => seen.filter((s) => s.startsWith('sse')).length;
      jest.advanceTimersByTime(JOIN_GATHER_MS - 1);
      expect(started()).toBe(0);
      jest.advanceTimersByTime(1);
      expect(started()).toBe(3);
      await turn();
      expect(started()).toBe(6);
      await turn();
      expect(started()).toBe(7);
      expect(seen.map((s) => s.split(' ')[1])).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `/api/prices/stream?n=${i}`));
      // A join that throws: its socket destroyed, the next one started all the same.
      const bad = { destroy: jest.fn() };
      hooks.sse = (url) => {
        if (url.endsWith('bad')) throw new Error('boom');
      };
      request('GET', '/api/prices/stream?n=bad', bad);
      request('GET', '/api/prices/stream?n=next');
      jest.advanceTimersByTime(JOIN_GATHER_MS);
      expect(bad.destroy).toHaveBeenCalledTimes(1);
      expect(seen[seen.length - 1]).toBe('sse /api/prices/stream?n=next {"kind":"price"}');
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('EDGE_ROUTES', () => {
  it('matches exact paths before a `:pair` segment, and a segment only when it is one', () => {
    expect(edgeRoute('/api/prices/stream', false)?.kind).toBe('stream');
    expect(edgeRoute('/api/prices/ETH-USD', false)?.handler).toBe('latest');
    expect(edgeRoute('/api/prices/', false)).toBeUndefined();
    expect(edgeRoute('/api/prices/ETH-USD/candles', false)).toBeUndefined();
    expect(edgeRoute('/api/prices/ws', true)?.handler).toBe('websocket');
    expect(edgeRoute('/api/prices/ws', false)?.handler).toBe('latest');
  });

  it('keys each fast route by the controller method Express routes the same path to (one rate-limit budget)', async () => {
    const { PATH_METADATA } = await import('@nestjs/common/constants');
    const controllers: Record<string, { prototype: object }> = {
      PricesController: (await import('../prices/prices.controller')).PricesController,
      LegacyController: (await import('../prices/legacy.controller')).LegacyController,
    };
    for (const route of EDGE_ROUTES) {
      if (route.kind !== 'rest') continue;
      const controller = controllers[route.rateLimit.controller];
      const method = (controller.prototype as Record<string, object>)[route.rateLimit.method];
      const base = Reflect.getMetadata(PATH_METADATA, controller) as string;
      expect(`/${base}/${Reflect.getMetadata(PATH_METADATA, method) as string}`).toBe(route.template);
    }
  });
});
