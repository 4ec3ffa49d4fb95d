import { EventEmitter } from 'node:events';
import type { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadConfig } from '../config/app-config';
import type { StreamGate } from '../stream/connection-registry';
import { SseEntry } from './sse-entry';
import type { SseRoute } from './sse-routes';
import type { SseService } from './sse.service';

/** An HTTP server with Express (here: a recording listener) already attached. */
function setup() {
  const server = new EventEmitter();
  const toExpress: string[] = [];
  server.on('request', (req: IncomingMessage) => toExpress.push(`${req.method} ${req.url}`));
  const host = { httpAdapter: { getHttpServer: () => server } } as unknown as HttpAdapterHost;
  const entry = new SseEntry(host, {} as SseService, {} as StreamGate, loadConfig({}));
  const opened: [string, SseRoute][] = [];
  jest.spyOn(entry, 'open').mockImplementation((req, _res, route) => void opened.push([req.url!, route]));
  entry.onApplicationBootstrap();
  const request = (method: string, url: string) => server.emit('request', { method, url } as IncomingMessage, {} as ServerResponse);
  return { server, toExpress, opened, request };
}

describe(SseEntry.name, () => {
  it('takes GET requests for the stream routes ahead of Express, and hands everything else on', () => {
    const { server, toExpress, opened, request } = setup();
    request('GET', '/api/prices/stream?pairs=BTC-USD');
    request('GET', '/api/price/stream');
    request('GET', '/stream?lastEventId=1-0');
    request('GET', '/api/prices');
    request('POST', '/api/prices/stream');
    request('HEAD', '/stream');
    request('GET', '/api/prices/stream/');
    expect(opened).toEqual([
      ['/api/prices/stream?pairs=BTC-USD', { kind: 'price' }],
      ['/api/price/stream', { kind: 'legacy', defaultPair: 'BTC-USD' }],
      ['/stream?lastEventId=1-0', { kind: 'message', defaultPair: 'BTC-USD' }],
    ]);
    expect(toExpress).toEqual(['GET /api/prices', 'POST /api/prices/stream', 'HEAD /stream', 'GET /api/prices/stream/']);
    expect(server.listenerCount('request')).toBe(1);
  });
});
