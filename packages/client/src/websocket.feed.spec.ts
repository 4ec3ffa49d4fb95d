import type { FeedHandlers, WebSocketLike } from './price-feed';
import type { Refusal } from './refusal';
import { createWebSocketFeed } from './websocket.feed';

/** A WebSocket the test drives. */
class FakeWebSocket implements WebSocketLike {
  static made: FakeWebSocket[] = [];
  readyState = 0;
  readonly url: string;
  private readonly listeners = new Map<string, ((event: object) => void)[]>();
  constructor(url: string) {
    this.url = url;
    FakeWebSocket.made.push(this);
  }
  addEventListener(type: string, listener: (event: object) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.readyState = 3;
  }
  fire(type: string, event: object = {}): void {
    for (const l of this.listeners.get(type) ?? []) l(event);
  }
}

type Closed = { reason: string; refusal: Refusal | undefined; retryMs?: number };

function start(answer: (url: string) => Promise<Response>) {
  FakeWebSocket.made = [];
  const probes: string[] = [];
  const closed: Closed[] = [];
  const ticks: string[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((url: string) => {
    probes.push(url);
    return answer(url);
  }) as typeof fetch;
  const feed = createWebSocketFeed(() => ({ pairs: ['DOGE-USD'], lastEventId: null, conflate: null }), { baseUrl: 'http://prices.test', WebSocket: FakeWebSocket });
  const handlers: FeedHandlers = { open: () => undefined, tick: (t) => ticks.push(t.id), reset: () => undefined, pairStatus: () => undefined, closed: (reason, refusal, retryMs) => closed.push({ reason, refusal, ...(retryMs === undefined ? {} : { retryMs }) }) };
  feed.start(handlers);
  const ws = FakeWebSocket.made[0];
  if (!ws) throw new Error('no WebSocket made');
  return { feed, ws, probes, closed, ticks, restore: () => (globalThis.fetch = realFetch) };
}

const json = (status: number, body: unknown): Promise<Response> =>
  Promise.resolve({ ok: status < 300, status, statusText: '', headers: { get: () => 'application/json' }, body: null, text: () => Promise.resolve(JSON.stringify(body)) } as unknown as Response);
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
};

describe('WebSocket feed', () => {
  it('learns why an upgrade that never opened was refused by asking the SSE path the same request', async () => {
    const s = start(() => json(400, { statusCode: 400, code: 'UNSUPPORTED_PAIR', message: 'DOGE-USD is not served here' }));
    try {
      s.ws.fire('error', { message: '' });
      s.ws.fire('close', { code: 1006 });
      await settle();
      expect(s.ws.url).toBe('ws://prices.test/api/prices/ws?pairs=DOGE-USD');
      expect(s.probes).toEqual(['http://prices.test/api/prices/stream?pairs=DOGE-USD']);
      expect(s.closed).toEqual([{ reason: 'refused: UNSUPPORTED_PAIR: DOGE-USD is not served here', refusal: { code: 'UNSUPPORTED_PAIR', status: 400, message: 'DOGE-USD is not served here' } }]);
    } finally {
      s.restore();
    }
  });

  it('reports no refusal when the SSE path serves the request or cannot be reached, but keeps a status that ws named', async () => {
    const served = start(() => Promise.resolve({ ok: true, status: 200, headers: { get: () => 'text/event-stream' }, body: null } as unknown as Response));
    served.ws.fire('close', { code: 1006 });
    await settle();
    served.restore();
    expect(served.closed).toEqual([{ reason: 'socket closed (1006)', refusal: undefined }]);

    const down = start(() => Promise.reject(new TypeError('fetch failed')));
    down.ws.fire('error', { message: 'Unexpected server response: 403' });
    await settle();
    down.restore();
    expect(down.closed).toEqual([{ reason: 'could not connect: Unexpected server response: 403', refusal: { code: null, status: 403, message: 'could not connect: Unexpected server response: 403' } }]);
  });

  it('does not probe once the connection had opened, and ignores a probe of an attempt it stopped', async () => {
    const s = start(() => json(400, { code: 'INVALID_PAIR', message: 'x' }));
    try {
      s.ws.fire('open');
      s.ws.fire('message', { data: JSON.stringify({ type: 'price', id: '1-0', pair: 'BTC-USD', price: 1, timestamp: 't', source: 'new-exchange' }) });
      s.ws.fire('close', { code: 1006 });
      await settle();
      expect(s.probes).toEqual([]);
      expect(s.ticks).toEqual(['1-0']);
      expect(s.closed).toEqual([{ reason: 'socket closed (1006)', refusal: undefined }]);

      s.feed.start({ open: () => undefined, tick: () => undefined, reset: () => undefined, pairStatus: () => undefined, closed: (reason, refusal) => s.closed.push({ reason, refusal }) });
      const second = FakeWebSocket.made[1];
      second?.fire('close', { code: 1006 });
      s.feed.stop();
      await settle();
      expect(s.closed).toHaveLength(1);
    } finally {
      s.restore();
    }
  });

  it('asks for deltas in the query, applies them, and ends the connection on one whose base it lacks', async () => {
    FakeWebSocket.made = [];
    const closed: string[] = [];
    const ticks: unknown[] = [];
    const feed = createWebSocketFeed(() => ({ pairs: ['BTC-USD'], lastEventId: null, conflate: null, delta: true }), { baseUrl: 'http://prices.test', WebSocket: FakeWebSocket });
    feed.start({ open: () => undefined, tick: (t) => ticks.push(t), reset: () => undefined, pairStatus: () => undefined, closed: (reason) => closed.push(reason) });
    const ws = FakeWebSocket.made[0]!;
    expect(ws.url).toBe('ws://prices.test/api/prices/ws?pairs=BTC-USD&delta=1');
    ws.fire('open');
    ws.fire('message', { data: JSON.stringify({ type: 'price', id: '1-0', pair: 'BTC-USD', price: 1, timestamp: '2026-12-06T11:00:00.000Z', source: 'kraken' }) });
    ws.fire('message', { data: JSON.stringify(['2-0', 'BTC-USD', 2, 1000]) });
    expect(ticks).toEqual([
      { id: '1-0', pair: 'BTC-USD', price: 1, timestamp: '2026-12-06T11:00:00.000Z', source: 'kraken' },
      { id: '2-0', pair: 'BTC-USD', price: 2, timestamp: '2026-12-06T11:00:01.000Z', source: 'kraken' },
    ]);
    ws.fire('message', { data: JSON.stringify(['3-0', 'ETH-USD', 3]) });
    expect(ticks).toHaveLength(2);
    expect(closed).toEqual(['delta without its base tick']);
  });

  it("passes on the server's reconnect hint of a 1012 (retry=<ms> in the reason), and none for other closes", async () => {
    const restart = start(() => json(200, {}));
    restart.ws.fire('open');
    restart.ws.fire('close', { code: 1012, reason: 'service restart; reconnect and resume; retry=734' });
    await settle();
    restart.restore();
    expect(restart.closed).toEqual([{ reason: 'socket closed (1012)', refusal: undefined, retryMs: 734 }]);

    const other = start(() => json(200, {}));
    other.ws.fire('open');
    other.ws.fire('close', { code: 1000, reason: 'closed; retry=5' });
    await settle();
    other.restore();
    expect(other.closed).toEqual([{ reason: 'socket closed (1000)', refusal: undefined }]);
  });
});
