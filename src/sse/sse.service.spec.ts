import { Logger } from '@nestjs/common';
import { FakeResponse } from './fake-response.testing';
import { loadConfig } from '../config/app-config';
import type { ResumePoint } from '../domain/resume';
import { MetricsService } from '../metrics/metrics.service';
import type { Tick } from '../shared/wire';
import { ConnectionRegistry } from '../stream/connection-registry';
import { MemoryTickLog } from '../stream/memory-tick-log';
import { PriceStreamService } from '../stream/price-stream.service';
import { StreamHub } from '../stream/stream-hub';
import { LocalSlots } from '../stream/slots';
import { flush, idResume } from '../stream/stream.testing';
import type { TickLog } from '../stream/tick-log';
import { SseService } from './sse.service';

/** Everything a response got, whatever the write boundaries (a turn's frames leave together). */
const text = (res: FakeResponse) => res.writes.join('');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const frameOf = (t: Tick) => `event: price\nid: ${t.id}\ndata: ${JSON.stringify(t)}\n\n`;

/** The real price stream over the in-memory log; ticks are published as the poller would. */
const setup = (env: Record<string, string> = {}) => {
  const config = loadConfig({ PAIRS: 'BTC-USD,ETH-USD', HEARTBEAT_INTERVAL_MS: '1000', SSE_RETRY_MS: '1500', CLIENT_BUFFER_SIZE: '2', ...env });
  const log = new MemoryTickLog(config);
  const metrics = new MetricsService();
  const prices = new PriceStreamService(log, config, metrics);
  const registry = new ConnectionRegistry(config, metrics, new LocalSlots(config.maxStreamConnections, config.maxStreamConnectionsPerIp));
  const hub = new StreamHub(prices, config, metrics);
  hub.start();
  const service = new SseService(hub, config);
  const closed = jest.spyOn(metrics, 'disconnected');
  let price = 97000;
  const publish = async (pair = 'BTC-USD') => (await log.publish({ pair, price: ++price, source: 'simulated', timestamp: new Date().toISOString() }))!;
  const open = async (kind: 'price' | 'message' = 'price', resume?: ResumePoint) => {
    const res = new FakeResponse();
    service.stream(res.asResponse(), { command: { pairs: ['BTC-USD'], resume, conflateMs: undefined }, kind, lease: await registry.acquire('sse', '10.0.0.1') });
    return res;
  };
  const closedBy = (reason: string) => closed.mock.calls.filter(([, r]) => r === reason).length;
  return { service, prices, hub, log, registry, open, publish, closedBy };
};

describe(SseService.name, () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => jest.useRealTimers());

  it('writes the retry hint, the latest tick, then live ticks as frames shared by all subscribers', async () => {
    const { publish, open, hub } = setup();
    const first = await publish();
    const a = await open();
    const b = await open();
    expect(hub.memberships()).toBe(2);
    await flush();
    const live = await publish();
    await publish('ETH-USD');
    await flush();
    expect(text(a)).toBe('retry: 1500\n\n' + frameOf(first) + frameOf(live));
    expect(text(b)).toBe(text(a));
  });

  it('replays exactly the missed ticks on resume, and sends reset for an id it cannot recover', async () => {
    const { publish, open } = setup();
    const seen = await publish();
    const missed = [await publish(), await publish()];
    const resumed = await open('price', idResume(seen.id));
    const lost = await open('price', idResume(`${Date.now() - 60_000}-0`));
    await flush();
    const live = await publish();
    await flush();
    expect(text(resumed)).toBe('retry: 1500\n\n' + [...missed, live].map(frameOf).join(''));
    expect(text(lost)).toMatch(/^retry: 1500\n\nevent: reset\ndata: \{"reason":"history_gap"[^\n]*\n\n/);
    expect(text(lost)).toMatch(new RegExp(`\\}\\n\\n${escape(frameOf(missed[1]) + frameOf(live))}$`));
  });

  it('writes unnamed frames for the legacy onmessage route', async () => {
    const { publish, open } = setup();
    const res = await open('message');
    await flush();
    const t = await publish();
    await flush();
    expect(text(res)).toBe(`retry: 1500\n\nid: ${t.id}\ndata: ${JSON.stringify({ ...t, symbol: 'BTC', name: 'Bitcoin' })}\n\n`);
  });

  it('sends heartbeats every HEARTBEAT_INTERVAL_MS from one timer that stops with the last stream', async () => {
    // Fake intervals; held frames are written at the end of the turn by a real setImmediate.
    jest.useFakeTimers({ doNotFake: ['setImmediate'] });
    const { service, open } = setup();
    const a = await open();
    const b = await open();
    expect(service.heartbeatActive).toBe(true);
    const beats = (res: FakeResponse) => text(res).split(':\n\n').length - 1;
    jest.advanceTimersByTime(999);
    await flush();
    expect(beats(a)).toBe(0);
    jest.advanceTimersByTime(2001); // beats at 1000, 2000 and 3000 ms, held for the end of the turn
    await flush();
    expect(beats(a)).toBe(3);
    expect(beats(b)).toBe(3);
    a.emit('close');
    expect(service.heartbeatActive).toBe(true);
    b.emit('close');
    expect(service.heartbeatActive).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('releases the membership and the lease when the client goes away, during the replay or after it', async () => {
    const { service, registry, open, publish, hub, closedBy } = setup();
    const early = await open();
    early.emit('close');
    expect(hub.memberships()).toBe(0);
    const res = await open();
    await flush();
    expect(registry.counts()).toMatchObject({ total: 1, sse: 1 });
    res.emit('close');
    await publish();
    expect(res.writes).toEqual(['retry: 1500\n\n']);
    expect(registry.counts()).toMatchObject({ total: 0, sse: 0, ips: 0 });
    expect(service.openCount).toBe(0);
    expect(closedBy('client')).toBe(2);
  });

  it('cuts off a subscriber that stops reading without slowing the others', async () => {
    const { registry, open, publish, closedBy } = setup();
    const slow = await open();
    const fast = await open();
    await flush();
    slow.accepting = false;
    for (let n = 0; n < 10; n++) {
      await publish();
      await flush(); // one poll per turn
    }
    // The write that found the buffer full and the one after it (the sink said "full" then);
    // the hub holds CLIENT_BUFFER_SIZE (2) more; the next one cuts.
    expect(slow.writes).toHaveLength(1 + 2);
    expect(slow.destroyed).toBe(true);
    expect(fast.writes).toHaveLength(1 + 10);
    expect(registry.counts().total).toBe(1);
    expect(closedBy('slow')).toBe(1);
  });

  it('ends every stream, live or still replaying, with a reconnect hint when the price stream completes (shutdown)', async () => {
    const { service, prices, hub, registry, open, publish, closedBy } = setup();
    const seen = await publish();
    const live = [await open(), await open()];
    await flush();
    const replaying = await open('price', idResume(seen.id));
    prices.beforeApplicationShutdown();
    await hub.shutdown();
    for (const res of [...live, replaying]) {
      // Each stream its own hint, 250 ms plus up to SHUTDOWN_RETRY_SPREAD_MS (the default 1000 here), not SSE_RETRY_MS.
      const hint = /^: server shutting down, reconnect\nretry: (\d+)\n\n$/.exec(res.writes.at(-1) ?? '');
      expect(Number(hint?.[1])).toBeGreaterThanOrEqual(250);
      expect(Number(hint?.[1])).toBeLessThanOrEqual(1250);
      expect(res.writableEnded).toBe(true);
    }
    expect(registry.counts().total).toBe(0);
    expect(service.openCount).toBe(0);
    expect(closedBy('shutdown')).toBe(3);
    expect(service.heartbeatActive).toBe(false);
  });

  it('ends a stream at once when it starts after the price stream completed', async () => {
    const { service, prices, hub, registry, open } = setup();
    prices.beforeApplicationShutdown();
    await hub.shutdown();
    const res = await open();
    expect(res.writableEnded).toBe(true);
    expect(hub.memberships()).toBe(0);
    expect(registry.counts().total).toBe(0);
    expect(service.openCount).toBe(0);
  });

  it('ends the stream with an INTERNAL_ERROR notice and the hint, and releases everything, when the resume read fails', async () => {
    const { log, registry, open, publish, closedBy } = setup();
    const seen = await publish();
    jest.spyOn(log as TickLog, 'readAfter').mockRejectedValue(new Error('redis down'));
    const res = await open('price', idResume(seen.id));
    await flush();
    expect(res.writableEnded).toBe(true);
    expect(res.writes.join('')).toMatch(/event: notice\ndata: \{"code":"INTERNAL_ERROR"[^\n]*\n\nretry: \d+\n\n$/);
    expect(registry.counts().total).toBe(0);
    expect(closedBy('error')).toBe(1);
  });
});
