import { createServer, request, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { SocketResponse } from '../http/socket-response';
import type { Tick } from '../shared/wire';
import type { StreamMessage, Subscriber } from '../stream/stream-hub';
import type { DisconnectReason } from '../shared/wire';
import { flush } from '../stream/stream.testing';
import { FakeResponse } from './fake-response.testing';
import { FLUSH_PACE, SseSink } from './sse-sink';

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

  describe('on a real socket', () => {
    /** A server whose one response becomes an SseSink handed to `serve`; the client's chunks, with when each came. */
    async function stream(serve: (sink: SseSink) => void): Promise<{ chunks: { at: number; text: string }[]; close(): Promise<void> }> {
      const server = createServer((_req, res: ServerResponse) => serve(new SseSink(res, 'price', 2500, () => undefined)));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const chunks: { at: number; text: string }[] = [];
      const req = request({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', path: '/' });
      req.on('error', () => undefined);
      req.on('socket', (socket) => socket.on('data', (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString() })));
      req.end();
      return {
        chunks,
        close: async () => {
          req.destroy();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    }
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    };

    it("holds the head until the join's catch-up, then sends head, hint and catch-up in one write", async () => {
      let joinedAt = 0;
      const s = await stream((sink) => {
        sink.open();
        // The resume read takes a while; the catch-up comes in the turn that completes the join.
        setTimeout(() => {
          joinedAt = Date.now();
          sink.joined();
          sink.write(price(1));
          sink.write(price(2));
        }, 40);
      });
      await until(() => s.chunks.map((c) => c.text).join('').includes('1-2'));
      await s.close();
      expect(s.chunks).toHaveLength(1);
      expect(s.chunks[0].at).toBeGreaterThanOrEqual(joinedAt);
      const text = s.chunks[0].text;
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text.indexOf('retry: 2500')).toBeLessThan(text.indexOf('id: 1-1'));
      expect(text.indexOf('id: 1-1')).toBeLessThan(text.indexOf('id: 1-2'));
    });

    it('sends the head when a join with nothing to catch up is done', async () => {
      const s = await stream((sink) => {
        sink.open();
        setTimeout(() => sink.joined(), 20);
      });
      await until(() => s.chunks.length > 0);
      await s.close();
      expect(s.chunks.map((c) => c.text).join('')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*retry: 2500\n\n/);
    });

    /** Records a time in `writes` for each call that hands the sink's socket's bytes to the kernel: one per write (a corked batch is one _writev). */
    function countWrites(sink: SseSink, writes: number[]): void {
      const socket = (sink as unknown as { res: { socket: unknown } }).res.socket as Record<'_write' | '_writev', (...args: unknown[]) => void>;
      for (const name of ['_write', '_writev'] as const) {
        const real = socket[name].bind(socket);
        socket[name] = (...args: unknown[]) => (writes.push(Date.now()), real(...args));
      }
    }

    /** The same as `stream`, with the stream door's response: a SocketResponse on the raw socket, the request read and dropped. */
    async function doorStream(serve: (sink: SseSink) => void): Promise<{ chunks: { at: number; text: string }[]; close(): Promise<void> }> {
      const server = createNetServer((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', () => serve(new SseSink(new SocketResponse(socket), 'price', 2500, () => undefined)));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const chunks: { at: number; text: string }[] = [];
      const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
      client.on('error', () => undefined);
      client.on('data', (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString() }));
      client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      return {
        chunks,
        close: async () => {
          client.destroy();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    }

    it.each([
      ["Node's ServerResponse", stream],
      ["the stream door's SocketResponse", doorStream],
    ])("ends on shutdown with the turn's waiting frames and the closing frame in one write (%s)", async (_kind, open) => {
      const writes: number[] = [];
      const s = await open((sink) => {
        sink.open();
        sink.joined();
        setTimeout(() => {
          countWrites(sink, writes);
          sink.write(price(1));
          sink.write(price(2));
          sink.end('shutdown');
        }, 20);
      });
      await until(() => s.chunks.map((c) => c.text).join('').endsWith('0\r\n\r\n'));
      await s.close();
      const text = s.chunks.map((c) => c.text).join('');
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text.indexOf('id: 1-2')).toBeGreaterThan(text.indexOf('id: 1-1'));
      expect(text.indexOf(': server shutting down, reconnect\nretry: ')).toBeGreaterThan(text.indexOf('id: 1-2'));
      expect(text.endsWith('0\r\n\r\n')).toBe(true);
      expect(writes).toHaveLength(1);
    });

    it('ends in one write, head and all, when shutdown comes while the head still waits for the join', async () => {
      const writes: number[] = [];
      const s = await doorStream((sink) => {
        countWrites(sink, writes);
        sink.open();
        sink.write(price(1));
        sink.end('shutdown');
      });
      await until(() => s.chunks.map((c) => c.text).join('').endsWith('0\r\n\r\n'));
      await s.close();
      const text = s.chunks.map((c) => c.text).join('');
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*retry: 2500\n\n[^]*id: 1-1\n[^]*: server shutting down, reconnect\nretry: \d+\n\n\r\n0\r\n\r\n$/);
      expect(writes).toHaveLength(1);
    });

    it('sends the head, an INTERNAL_ERROR notice and the hint, and ends, when the join fails while the head is held', async () => {
      const s = await stream((sink) => {
        sink.open();
        // The resume read failed (a Redis that froze past its deadline).
        setTimeout(() => sink.end('error'), 20);
      });
      await until(() => s.chunks.map((c) => c.text).join('').endsWith('0\r\n\r\n'));
      await s.close();
      const text = s.chunks.map((c) => c.text).join('');
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).toContain('event: notice\ndata: {"code":"INTERNAL_ERROR"');
      expect(text.indexOf('"INTERNAL_ERROR"')).toBeLessThan(text.lastIndexOf('retry: 2500'));
      expect(text.endsWith('0\r\n\r\n')).toBe(true);
    });
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

  describe('a pass in slices (FLUSH_PACE) with the event loop in between', () => {
    const realNow = FLUSH_PACE.now;
    let t = 0;
    beforeEach(() => {
      t = 0;
      FLUSH_PACE.now = () => t;
    });
    afterEach(() => (FLUSH_PACE.now = realNow));
    /** Streams whose every write takes a millisecond of the clock: FLUSH_PACE.budgetMs streams per slice. */
    const streams = (n: number) =>
      Array.from({ length: n }, () => {
        const s = setup();
        const write = s.res.write.bind(s.res);
        s.res.write = (chunk: string | Buffer) => ((t += 1), write(chunk));
        return s;
      });
    const written = (all: ReturnType<typeof setup>[]) => all.filter(({ res }) => res.writes.length > 0).length;
    const slice = FLUSH_PACE.budgetMs;

    it("writes each stream's frames once, in order, a later turn's frames with what still waits", async () => {
      const all = streams(3 * slice + 5);
      for (const { sink } of all) sink.write(price(1));
      await flush();
      expect(written(all)).toBe(slice);
      const late = all.slice(slice + 2);
      for (const { sink } of all.slice(0, 2)) sink.write(price(2)); // written already: a new pass
      for (const { sink } of late) sink.write(price(2)); // still waiting: joins the frame that waits
      for (let i = 0; i < 6; i++) await flush();
      for (const { res } of [...all.slice(0, 2), ...late]) expect(res.writes.join('')).toMatch(/id: 1-1\n[^]*id: 1-2\n/);
      for (const { res } of late) expect(res.writes).toHaveLength(1);
      expect(all.every(({ res }) => (res.writes.join('').match(/id: 1-1\n/g) ?? []).length === 1)).toBe(true);
    });

    it('writes nothing more to a stream closed while the pass is under way, and the rest all the same', async () => {
      const all = streams(2 * slice + 3);
      for (const { sink } of all) sink.write(price(1));
      await flush();
      const gone = all[slice + 1];
      gone.res.emit('close');
      for (let i = 0; i < 3; i++) await flush();
      expect(gone.res.writes).toEqual([]);
      expect(gone.events.closed).toEqual(['client']);
      expect(written(all)).toBe(all.length - 1);
    });

    it('ends a waiting stream on shutdown with its frames, then the hint, and the pass does not write it again', async () => {
      const all = streams(2 * slice + 3);
      for (const { sink } of all) sink.write(price(1));
      await flush();
      const ending = all[slice + 1];
      ending.sink.end('shutdown');
      expect(ending.res.writes).toEqual([expect.stringContaining('id: 1-1\n'), ': server shutting down, reconnect\nretry: 2500\n\n']);
      for (let i = 0; i < 3; i++) await flush();
      expect(ending.res.writes).toHaveLength(2);
      expect(written(all)).toBe(all.length);
    });
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

  it('ends a stream whose join failed with an INTERNAL_ERROR notice and the reconnect hint, head and all', () => {
    const { res, sink, events } = setup();
    sink.open();
    sink.end('error');
    expect(res.status).toBe(200);
    expect(res.writes.slice(1).join('')).toBe(
      'event: notice\ndata: {"code":"INTERNAL_ERROR","message":"the stream could not start: its history could not be read; reconnect and resume"}\n\nretry: 2500\n\n',
    );
    expect(res.writableEnded).toBe(true);
    expect(res.destroyed).toBe(false);
    expect(events.closed).toEqual(['error']);
  });

  it('reports a client that went away', () => {
    const { res, events } = setup();
    res.emit('close');
    expect(events.closed).toEqual(['client']);
  });
});
