import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { readFirstLine } from './first-line';

/** A stand-in for a paused net.Socket (no handle: nothing to stop at the libuv level). */
function fakeSocket(): Socket & PassThrough {
  const s = new PassThrough() as unknown as Socket & PassThrough;
  s.pause();
  return s;
}

describe('readFirstLine', () => {
  afterEach(() => jest.useRealTimers());

  it('hands on every byte read up to the line end, the rest of its chunk included, in one buffer; what follows stays in the stream', async () => {
    const socket = fakeSocket();
    const got: string[] = [];
    const order: string[] = [];
    readFirstLine(socket, 100, 10_000, (head) => (got.push(head.toString('latin1')), order.push('then')), () => order.push('release'));
    socket.write('PSRE');
    socket.write('LAY1 a');
    expect(got).toHaveLength(0);
    socket.write('b\nafter;');
    expect(got).toEqual(['PSRELAY1 ab\nafter;']);
    expect(order).toEqual(['release', 'then']);
    expect(socket.isPaused()).toBe(true);
    socket.write('later');
    expect(got).toHaveLength(1);
    // Nothing lost: the next reader gets what came after the read.
    await new Promise((r) => setImmediate(r));
    expect(String(socket.read())).toBe('later');
    socket.destroy();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['release', 'then']);
  });

  it('hands on a single chunk as it came, and stops at the byte bound when no line end comes', () => {
    const socket = fakeSocket();
    const got: Buffer[] = [];
    readFirstLine(socket, 10, 10_000, (head) => got.push(head));
    const chunk = Buffer.from('GET /\r\nHost');
    socket.write(chunk);
    expect(got).toHaveLength(1);
    expect(got[0].toString()).toBe('GET /\r\nHost');
    const bounded = fakeSocket();
    const heads: string[] = [];
    readFirstLine(bounded, 10, 10_000, (head) => heads.push(head.toString()));
    bounded.write('x'.repeat(6));
    expect(heads).toHaveLength(0);
    bounded.write('y'.repeat(6));
    expect(heads).toEqual(['xxxxxxyyyyyy']);
  });

  it('destroys a socket whose line has not come by the deadline, however it drips, and releases it once', async () => {
    jest.useFakeTimers();
    const socket = fakeSocket();
    let released = 0;
    const got: Buffer[] = [];
    readFirstLine(socket, 100, 1_000, (head) => got.push(head), () => released++);
    for (let t = 0; t < 4; t++) {
      socket.write('G');
      jest.advanceTimersByTime(200);
    }
    expect(socket.destroyed).toBe(false);
    jest.advanceTimersByTime(201);
    expect(socket.destroyed).toBe(true);
    jest.useRealTimers();
    await new Promise((r) => setImmediate(r));
    expect(released).toBe(1);
    expect(got).toHaveLength(0);
  });

  it('releases a socket that closes before its line, once, and owns it: an error only destroys it', async () => {
    const socket = fakeSocket();
    let released = 0;
    readFirstLine(socket, 100, 10_000, () => undefined, () => released++);
    expect(socket.listenerCount('error')).toBe(1);
    socket.emit('error', new Error('reset'));
    await new Promise((r) => setImmediate(r));
    expect(socket.destroyed).toBe(true);
    expect(released).toBe(1);
  });
});
