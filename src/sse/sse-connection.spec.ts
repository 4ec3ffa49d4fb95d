import { FakeResponse } from './fake-response.testing';
import type { DisconnectReason } from '../stream/connection-registry';
import { SseConnection } from './sse-connection';

const setup = (maxBacklog = 3) => {
  const res = new FakeResponse();
  const reasons: DisconnectReason[] = [];
  const conn = new SseConnection(res.asResponse(), maxBacklog, (r) => reasons.push(r));
  return { res, conn, reasons };
};

describe(SseConnection.name, () => {
  it('sends the SSE headers and the retry hint on open', () => {
    const { res, conn } = setup();
    conn.open(2500);
    expect(res.status).toBe(200);
    expect(res.headers).toEqual({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
    expect(res.writes).toEqual(['retry: 2500\n\n']);
  });

  it('writes each frame with exactly one write while the client keeps up', () => {
    const { res, conn } = setup(1);
    for (let i = 0; i < 100; i++) expect(conn.send(`f${i}`)).toBe(true);
    expect(res.writes).toHaveLength(100);
    expect(conn.backlogFrames).toBe(0);
  });

  it('holds the frames of one event-loop turn corked and uncorks them together in the next', async () => {
    const { res, conn } = setup();
    conn.send('tick of BTC-USD');
    conn.send('tick of ETH-USD');
    expect(res.corks).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(res.corks).toBe(0);
    expect(res.writes).toEqual(['tick of BTC-USD', 'tick of ETH-USD']);
  });

  it('destroys the response and reports slow when the backlog passes the limit after write() returned false', () => {
    const { res, conn, reasons } = setup(3);
    res.accepting = false;
    expect(conn.send('a')).toBe(true); // the write that found the buffer full
    for (const f of ['b', 'c', 'd']) expect(conn.send(f)).toBe(true);
    expect(conn.backlogFrames).toBe(3);
    expect(conn.send('e')).toBe(false);
    expect(res.writes).toEqual(['a', 'b', 'c', 'd']);
    expect(res.destroyed).toBe(true);
    expect(reasons).toEqual(['slow']);
    expect(conn.send('f')).toBe(false);
    expect(res.writes).toHaveLength(4);
  });

  it('forgets the backlog when the socket drains, so a client that catches up stays connected', () => {
    const { res, conn, reasons } = setup(2);
    for (let round = 0; round < 10; round++) {
      res.accepting = false;
      for (let i = 0; i < 3; i++) expect(conn.send(`r${round}-${i}`)).toBe(true);
      res.drain();
      expect(conn.backlogFrames).toBe(0);
    }
    expect(reasons).toEqual([]);
    expect(res.writes).toHaveLength(30);
  });

  it('skips heartbeats while the buffer is full and sends them when it is not', () => {
    const { res, conn } = setup();
    conn.heartbeat();
    res.accepting = false;
    conn.send('x');
    conn.heartbeat();
    conn.heartbeat();
    expect(res.writes).toEqual([':\n\n', 'x']);
    expect(conn.backlogFrames).toBe(0);
    res.drain();
    conn.heartbeat();
    expect(res.writes).toEqual([':\n\n', 'x', ':\n\n']);
  });

  it('ends with a reconnect hint on finish and releases once', () => {
    const { res, conn, reasons } = setup();
    conn.finish(1000);
    conn.finish(1000);
    conn.close('client');
    expect(res.writes).toEqual([': server shutting down, reconnect\nretry: 1000\n\n']);
    expect(res.writableEnded).toBe(true);
    expect(res.destroyed).toBe(false);
    expect(reasons).toEqual(['shutdown']);
  });

  it('cuts a congested response on finish instead of waiting for the client to read', () => {
    const { res, conn, reasons } = setup();
    res.accepting = false;
    conn.send('x');
    conn.finish(1000);
    expect(res.writableEnded).toBe(false);
    expect(res.destroyed).toBe(true);
    expect(reasons).toEqual(['shutdown']);
  });

  it('reports client when the response closes, and removes its listeners', () => {
    const { res, reasons } = setup();
    expect(res.listenerCount('close') + res.listenerCount('drain') + res.listenerCount('error')).toBe(3);
    res.emit('close');
    res.emit('close');
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

    it('writes each frame to the socket as one whole HTTP chunk, and heartbeats too', () => {
      const { res, socket, conn } = direct();
      conn.send('data: é\n\n');
      conn.heartbeat();
      expect(res.writes).toEqual(['retry: 1000\n\n']);
      expect(socket.writes).toEqual(['a\r\ndata: é\n\n\r\n', '3\r\n:\n\n\r\n']);
      expect(conn.chunked).toBe(true);
    });

    it('watches the socket for drain and lets go of it on close', () => {
      const { socket, conn, reasons } = direct();
      socket.accepting = false;
      conn.send('a');
      conn.send('b');
      expect(conn.backlogFrames).toBe(1);
      socket.drain();
      expect(conn.backlogFrames).toBe(0);
      conn.close('client');
      expect(socket.listenerCount('drain')).toBe(0);
      expect(reasons).toEqual(['client']);
    });

    it('keeps writing through the response while it holds output back', () => {
      const { res, socket, conn } = direct(42);
      conn.send('a');
      expect(socket.writes).toEqual([]);
      expect(res.writes).toEqual(['retry: 1000\n\n', 'a']);
      expect(conn.chunked).toBe(false);
    });
  });
});
