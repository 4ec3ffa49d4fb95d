import type { Tick } from '../shared/wire';
import type { StreamMessage, Subscriber } from '../stream/stream-hub';
import type { DisconnectReason } from '../shared/wire';
import { flush } from '../stream/stream.testing';
import { FakeResponse } from './fake-response.testing';
import { FLUSH_SLICE, SseSink } from './sse-sink';

const tick = (n: number): Tick => ({ id: `1-${n}`, pair: 'BTC-USD', price: 100 + n, timestamp: '2026-11-21T21:00:00.000Z', source: 'simulated' });
const price = (n: number, skipped = 0): StreamMessage => ({ type: 'price', tick: tick(n), skipped });

function setup() {
  const res = new FakeResponse();
  const gone: SseSink[] = [];
  const sink = new SseSink(res.asResponse(), 'price', 2500, (s) => gone.push(s));
  const events = { drained: 0, closed: [] as DisconnectReason[] };
  sink.subscriber = { drained: () => events.drained++, closed: (r: DisconnectReason) => events.closed.push(r) } as unknown as Subscriber;
  return { res, sink, gone, events };
}

describe(SseSink.name, () => {
  it('sends the SSE headers and the retry hint on open', () => {
    const { res, sink } = setup();
    sink.open();
    expect(res.status).toBe(200);
    expect(res.headers).toEqual({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
    expect(res.writes).toEqual(['retry: 2500\n\n']);
  });

  it('writes the frames of one event-loop turn together, in one write, when the turn ends', async () => {
    const { res, sink } = setup();
    expect(sink.write(price(1))).toBe(true);
    expect(sink.write(price(2))).toBe(true);
    expect(res.writes).toEqual([]);
    await flush();
    expect(res.writes).toHaveLength(1);
    expect(res.writes[0]).toContain('id: 1-1\n');
    expect(res.writes[0]).toContain('id: 1-2\n');
  });

  it('writes a turn\'s streams in slices with the event loop in between, each stream\'s frames in order', async () => {
    const streams = Array.from({ length: 2 * FLUSH_SLICE + 200 }, () => setup());
    for (const { sink } of streams) sink.write(price(1));
    await flush();
    expect(streams.filter(({ res }) => res.writes.length === 1)).toHaveLength(FLUSH_SLICE);
    const late = streams.slice(FLUSH_SLICE + 100);
    for (const { sink } of late) sink.write(price(2)); // a later turn's frame joins what waits
    await flush();
    expect(streams.filter(({ res }) => res.writes.length === 1)).toHaveLength(2 * FLUSH_SLICE);
    await flush();
    await flush();
    for (const { res } of late) expect(res.writes.join('')).toMatch(/id: 1-1\n[\s\S]*id: 1-2\n/);
    expect(streams.every(({ res }) => res.writes.join('').includes('id: 1-1'))).toBe(true);
  });

  it('shares the joined bytes between streams that got the same frames in a turn', async () => {
    const writes: Buffer[] = [];
    const messages = [price(1), price(2)];
    for (let i = 0; i < 3; i++) {
      const { res, sink } = setup();
      res.write = (chunk: string | Buffer) => (writes.push(chunk as Buffer), true);
      for (const m of messages) sink.write(m);
    }
    await flush();
    expect(writes).toHaveLength(3);
    expect(writes[1]).toBe(writes[0]);
    expect(writes[2]).toBe(writes[0]);
  });

  it('says it is full once the socket refuses more, and hands control back to the hub on drain', async () => {
    const { res, sink, events } = setup();
    res.accepting = false;
    expect(sink.write(price(1))).toBe(true);
    await flush(); // the write that found the buffer full
    expect(sink.write(price(2))).toBe(false);
    expect(events.drained).toBe(0);
    res.drain();
    expect(events.drained).toBe(1);
  });

  it('writes a burst in 16 KiB writes within the turn, so that a full socket shows while it is written', () => {
    const { res, sink } = setup();
    res.accepting = false;
    let n = 0;
    while (sink.write(price(++n)) && n < 10_000);
    expect(res.writes).toHaveLength(1);
    expect(Buffer.byteLength(res.writes[0])).toBeGreaterThanOrEqual(16 * 1024);
    expect(n).toBeLessThan(200);
  });

  it('writes a conflated tick with the count of ticks it replaces', async () => {
    const { res, sink } = setup();
    sink.write(price(7, 4));
    await flush();
    expect(res.writes[0]).toContain('"skipped":4');
  });

  it('ends with a reconnect hint on shutdown, cuts a slow stream at once, and reports each close once', async () => {
    const a = setup();
    a.sink.write(price(1));
    a.sink.end('shutdown');
    expect(a.res.writes.join('')).toContain('id: 1-1');
    expect(a.res.writes[a.res.writes.length - 1]).toBe(': server shutting down, reconnect\nretry: 2500\n\n');
    expect(a.events.closed).toEqual(['shutdown']);
    // The hub's hint for this stream, when it gives one, is the `retry:` of the closing frame.
    const hinted = setup();
    hinted.sink.end('shutdown', 734);
    expect(hinted.res.writes.at(-1)).toBe(': server shutting down, reconnect\nretry: 734\n\n');
    const b = setup();
    b.sink.end('slow');
    b.res.emit('close');
    expect(b.res.destroyed).toBe(true);
    expect(b.events.closed).toEqual(['slow']);
    expect(b.gone).toEqual([b.sink]);
    expect(b.sink.write(price(2))).toBe(false);
  });

  it('reports a client that went away', () => {
    const { res, events } = setup();
    res.emit('close');
    expect(events.closed).toEqual(['client']);
  });
});
