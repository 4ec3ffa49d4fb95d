import { FakeResponse } from './fake-response.testing';
import type { DisconnectReason } from '../stream/connection-registry';
import { SseConnection } from './sse-connection';

const setup = (maxBacklog = 3) => {
  const res = new FakeResponse();
  const reasons: DisconnectReason[] = [];
  const conn = new SseConnection(res.asResponse(), maxBacklog, (r) => reasons.push(r));
  return { res, conn, reasons };
};

/** The end of this event-loop turn, when held frames are written. */
const turn = () => new Promise((r) => setImmediate(r));

describe(SseConnection.name, () => {
  it('sends the SSE headers and the retry hint on open', () => {
    const { res, conn } = setup();
    conn.open(2500);
    expect(res.status).toBe(200);
    expect(res.headers).toEqual({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
    expect(res.writes).toEqual(['retry: 2500\n\n']);
  });

  it('writes the frames of one event-loop turn together, in one write, when the turn ends', async () => {
    const { res, conn } = setup();
    conn.send('tick of BTC-USD\n\n');
    conn.send('tick of ETH-USD\n\n');
    expect(res.writes).toEqual([]);
    await turn();
    expect(res.writes).toEqual(['tick of BTC-USD\n\ntick of ETH-USD\n\n']);
    conn.send('next\n\n');
    await turn();
    expect(res.writes).toHaveLength(2);
  });

  it('shares the joined bytes between connections that got the same frames in a turn', async () => {
    const writes: Buffer[] = [];
    const conns = [0, 1, 2].map(() => {
      const { res, conn } = setup();
      res.write = (chunk: string | Buffer) => (writes.push(chunk as Buffer), true);
      return conn;
    });
    const [a, b] = [Buffer.from('a\n\n'), Buffer.from('b\n\n')];
    for (const conn of conns) {
      conn.send(a);
      conn.send(b);
    }
    await turn();
    expect(writes).toHaveLength(3);
    expect(writes[1]).toBe(writes[0]);
    expect(writes[2]).toBe(writes[0]);
    expect(writes[0].toString()).toBe('a\n\nb\n\n');
  });

  it('destroys the response and reports slow when the backlog passes the limit after write() returned false', async () => {
    const { res, conn, reasons } = setup(3);
    res.accepting = false;
    expect(conn.send('a')).toBe(true);
    await turn(); // the write that found the buffer full
    for (const f of ['b', 'c', 'd']) expect(conn.send(f)).toBe(true);
    expect(conn.backlogFrames).toBe(3);
    expect(conn.send('e')).toBe(false);
    await turn();
    expect(res.writes).toEqual(['a']);
    expect(res.destroyed).toBe(true);
    expect(reasons).toEqual(['slow']);
    expect(conn.send('f')).toBe(false);
  });

  it('forgets the backlog when the socket drains, so a client that catches up stays connected', async () => {
    const { res, conn, reasons } = setup(2);
    for (let round = 0; round < 10; round++) {
      res.accepting = false;
      for (let i = 0; i < 3; i++) {
        expect(conn.send(`r${round}-${i}`)).toBe(true);
        await turn();
      }
      res.drain();
      expect(conn.backlogFrames).toBe(0);
    }
    expect(reasons).toEqual([]);
    expect(res.writes).toHaveLength(30);
  });

  it('skips heartbeats while the buffer is full and sends them when it is not', async () => {
    const { res, conn } = setup();
    conn.heartbeat();
    await turn();
    res.accepting = false;
    conn.send('x');
    await turn();
    conn.heartbeat();
    conn.heartbeat();
    await turn();
    expect(res.writes).toEqual([':\n\n', 'x']);
    expect(conn.backlogFrames).toBe(0);
    res.drain();
    conn.heartbeat();
    await turn();
    expect(res.writes).toEqual([':\n\n', 'x', ':\n\n']);
  });

  it('writes what it holds, then ends with a reconnect hint on finish, and releases once', () => {
    const { res, conn, reasons } = setup();
    conn.send('last\n\n');
    conn.finish(1000);
    conn.finish(1000);
    conn.close('client');
    expect(res.writes).toEqual(['last\n\n', ': server shutting down, reconnect\nretry: 1000\n\n']);
    expect(res.writableEnded).toBe(true);
    expect(res.destroyed).toBe(false);
    expect(reasons).toEqual(['shutdown']);
  });

  it('cuts a congested response on finish instead of waiting for the client to read', async () => {
    const { res, conn, reasons } = setup();
    res.accepting = false;
    conn.send('x');
    await turn();
    conn.finish(1000);
    expect(res.writableEnded).toBe(false);
    expect(res.destroyed).toBe(true);
    expect(reasons).toEqual(['shutdown']);
  });

  it('drops what it holds when the client goes away, reports client, and removes its listeners', async () => {
    const { res, conn, reasons } = setup();
    expect(res.listenerCount('close') + res.listenerCount('drain') + res.listenerCount('error')).toBe(3);
    conn.send('never sent');
    res.emit('close');
    res.emit('close');
    await turn();
    expect(res.writes).toEqual([]);
    expect(reasons).toEqual(['client']);
    expect(res.listenerCount('close') + res.listenerCount('drain') + res.listenerCount('error')).toBe(0);
  });

  it('reports error when the response fails', () => {
    const { res, reasons } = setup();
    res.emit('error', new Error('EPIPE'));
    expect(reasons).toEqual(['error']);
    expect(res.destroyed).toBe(true);
  });

  describe('once the response owns its socket', () => {
    const direct = (held = 0) => {
      const { res, conn, reasons } = setup(1);
      const socket = new FakeResponse();
      res.socket = socket;
      res.chunkedEncoding = true;
      res.writableLength = held; // bytes the response holds back (a pipelined request's response)
      conn.open(1000);
      return { res, socket, conn, reasons };
    };

    it('writes frames to the socket as whole HTTP chunks, heartbeats too', async () => {
      const { res, socket, conn } = direct();
      conn.send('data: é\n\n');
      conn.heartbeat();
      await turn();
      expect(res.writes).toEqual(['retry: 1000\n\n']);
      expect(socket.writes).toEqual(['a\r\ndata: é\n\n\r\n3\r\n:\n\n\r\n']);
      expect(conn.chunked).toBe(true);
    });

    it('watches the socket for drain and lets go of it on close', async () => {
      const { socket, conn, reasons } = direct();
      socket.accepting = false;
      conn.send('a');
      await turn();
      conn.send('b');
      expect(conn.backlogFrames).toBe(1);
      socket.drain();
      expect(conn.backlogFrames).toBe(0);
      conn.close('client');
      expect(socket.listenerCount('drain')).toBe(0);
      expect(reasons).toEqual(['client']);
    });

    it('keeps writing through the response while it holds output back', async () => {
      const { res, socket, conn } = direct(42);
      conn.send('a');
      await turn();
      expect(socket.writes).toEqual([]);
      expect(res.writes).toEqual(['retry: 1000\n\n', 'a']);
      expect(conn.chunked).toBe(false);
    });
  });
});
