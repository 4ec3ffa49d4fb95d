import { Logger } from '@nestjs/common';
import { Subject, finalize, type Observable } from 'rxjs';
import { FakeResponse } from './fake-response.testing';
import { loadConfig } from '../config/app-config';
import type { Tick } from '../shared/wire';
import { ConnectionRegistry } from '../stream/connection-registry';
import type { PriceStreamService, StreamEvent } from '../stream/price-stream.service';
import { SseService } from './sse.service';

const tick = (n: number): Tick => ({ id: `1763758800000-${n}`, pair: 'BTC-USD', price: 97000 + n, timestamp: '2026-11-21T21:00:00.000Z', source: 'simulated' });

/** A price stream whose events the test pushes; counts live subscriptions. */
class FakePrices {
  readonly events = new Subject<StreamEvent>();
  subscribers = 0;
  subscribe(): Observable<StreamEvent> {
    this.subscribers++;
    return this.events.pipe(finalize(() => this.subscribers--));
  }
}

const setup = (env: Record<string, string> = {}) => {
  const config = loadConfig({ HEARTBEAT_INTERVAL_MS: '1000', SSE_RETRY_MS: '1500', CLIENT_BUFFER_SIZE: '2', ...env });
  const prices = new FakePrices();
  const registry = new ConnectionRegistry(config);
  const service = new SseService(prices as unknown as PriceStreamService, config);
  const open = (kind: 'price' | 'message' = 'price') => {
    const res = new FakeResponse();
    service.stream(res.asResponse(), { pairs: ['BTC-USD'], kind, lease: registry.acquire('sse', '10.0.0.1') });
    return res;
  };
  return { service, prices, registry, open };
};

describe(SseService.name, () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => jest.useRealTimers());

  it('writes the retry hint, then each event as a frame shared by all subscribers', () => {
    const { prices, open } = setup();
    const a = open();
    const b = open();
    const t = tick(1);
    prices.events.next({ type: 'ready', recovered: false, replayed: 0 });
    prices.events.next({ type: 'reset', reset: { reason: 'history_gap', oldestId: null, oldestTimestamp: null } });
    prices.events.next({ type: 'price', tick: t });
    expect(a.writes).toEqual([
      'retry: 1500\n\n',
      'event: reset\ndata: {"reason":"history_gap","oldestId":null,"oldestTimestamp":null}\n\n',
      `event: price\nid: ${t.id}\ndata: ${JSON.stringify(t)}\n\n`,
    ]);
    expect(b.writes).toEqual(a.writes);
    expect(b.writes[2]).toBe(a.writes[2]);
  });

  it('writes unnamed frames for the legacy onmessage route', () => {
    const { prices, open } = setup();
    const res = open('message');
    prices.events.next({ type: 'price', tick: tick(2) });
    expect(res.writes[1]).toBe(`id: ${tick(2).id}\ndata: ${JSON.stringify(tick(2))}\n\n`);
  });

  it('sends heartbeats every HEARTBEAT_INTERVAL_MS from one timer that stops with the last stream', () => {
    jest.useFakeTimers();
    const { service, open } = setup();
    const a = open();
    const b = open();
    expect(service.heartbeatActive).toBe(true);
    jest.advanceTimersByTime(999);
    expect(a.writes.filter((w) => w === ':\n\n')).toHaveLength(0);
    jest.advanceTimersByTime(1);
    jest.advanceTimersByTime(2000);
    expect(a.writes.filter((w) => w === ':\n\n')).toHaveLength(3);
    expect(b.writes.filter((w) => w === ':\n\n')).toHaveLength(3);
    a.emit('close');
    expect(service.heartbeatActive).toBe(true);
    b.emit('close');
    expect(service.heartbeatActive).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('releases the subscription and the lease when the client goes away', () => {
    const { service, prices, registry, open } = setup();
    const res = open();
    expect(prices.subscribers).toBe(1);
    expect(registry.counts()).toMatchObject({ total: 1, sse: 1 });
    res.emit('close');
    expect(prices.subscribers).toBe(0);
    expect(registry.counts()).toMatchObject({ total: 0, sse: 0, ips: 0 });
    expect(service.stats()).toMatchObject({ open: 0, opened: 1, closed: { client: 1 } });
  });

  it('cuts off a subscriber that stops reading without slowing the others', () => {
    const { service, prices, registry, open } = setup();
    const slow = open();
    const fast = open();
    slow.accepting = false;
    for (let n = 0; n < 10; n++) prices.events.next({ type: 'price', tick: tick(n) });
    // The write that filled the buffer, then CLIENT_BUFFER_SIZE (2) more; the next one cuts.
    expect(slow.writes).toHaveLength(1 + 1 + 2);
    expect(slow.destroyed).toBe(true);
    expect(fast.writes).toHaveLength(1 + 10);
    expect(prices.subscribers).toBe(1);
    expect(registry.counts().total).toBe(1);
    expect(service.stats().closed.slow).toBe(1);
  });

  it('ends every stream with a reconnect hint when the price stream completes (shutdown)', () => {
    const { service, prices, registry, open } = setup();
    const streams = [open(), open(), open()];
    prices.events.complete();
    for (const res of streams) {
      expect(res.writes.at(-1)).toBe(': server shutting down, reconnect\nretry: 1500\n\n');
      expect(res.writableEnded).toBe(true);
    }
    expect(registry.counts().total).toBe(0);
    expect(service.stats()).toMatchObject({ open: 0, closed: { shutdown: 3 } });
    expect(service.heartbeatActive).toBe(false);
  });

  it('ends a stream at once when it starts after the price stream completed', () => {
    const { service, prices, registry, open } = setup();
    prices.events.complete();
    const res = open();
    expect(res.writableEnded).toBe(true);
    expect(prices.subscribers).toBe(0);
    expect(registry.counts().total).toBe(0);
    expect(service.openCount).toBe(0);
  });

  it('closes the stream and releases everything when the price stream fails', () => {
    const { service, prices, registry, open } = setup();
    const res = open();
    prices.events.error(new Error('redis down'));
    expect(res.destroyed).toBe(true);
    expect(registry.counts().total).toBe(0);
    expect(service.stats().closed.error).toBe(1);
  });

  it('finishes streams left open at application shutdown', () => {
    const { service, registry, open } = setup();
    const res = open();
    service.onApplicationShutdown();
    expect(res.writableEnded).toBe(true);
    expect(registry.counts().total).toBe(0);
  });
});
