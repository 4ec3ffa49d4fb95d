import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { firstBytes, PendingConnections, sessionOwner, type FrontDoor } from './routing';

/** A stand-in for a paused net.Socket (no handle: nothing to stop at the libuv level). */
function fakeSocket(remoteAddress = '192.0.2.1'): Socket & PassThrough {
  const s = new PassThrough() as unknown as Socket & PassThrough;
  Object.defineProperty(s, 'remoteAddress', { value: remoteAddress });
  s.pause();
  return s;
}

const door = (perAddress = 10, headTimeoutMs = 10_000): FrontDoor => ({ headTimeoutMs, pending: new PendingConnections(perAddress) });

describe('routing', () => {
  it('names the worker of an engine.io session from the request line only', () => {
    expect(sessionOwner(Buffer.from('GET /socket.io/?EIO=4&transport=polling&sid=w3.abcdef HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(3);
    expect(sessionOwner(Buffer.from('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nCookie: sid=w3.x\r\n\r\n'))).toBeUndefined();
    expect(sessionOwner(Buffer.from('GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\n\r\n'))).toBeUndefined();
  });

  it('reads on until the request line is complete when it comes in pieces', () => {
    const socket = fakeSocket();
    const got: string[] = [];
    firstBytes(socket, (head) => got.push(head.toString('latin1')), door());
    socket.write('GET /socket.io/?EIO=4&transport=polling&s');
    socket.write('id=w2.abc HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(got).toHaveLength(1);
    expect(sessionOwner(Buffer.from(got[0], 'latin1'))).toBe(2);
    // Paused after the request line: what follows waits in the stream for whoever reads it next.
    socket.write('more');
    expect(got).toHaveLength(1);
  });

  describe('the front door (D3: a slow drip)', () => {
    afterEach(() => jest.useRealTimers());

    it('closes a connection whose request line has not come by the deadline, however it drips', () => {
      jest.useFakeTimers();
      const d = door(10, 10_000);
      const socket = fakeSocket();
      const got: Buffer[] = [];
      firstBytes(socket, (head) => got.push(head), d);
      // A byte every 2 s: an idle timeout would be reset each time; the deadline is not.
      for (let t = 0; t < 4; t++) {
        socket.write('G');
        jest.advanceTimersByTime(2000);
      }
      expect(socket.destroyed).toBe(false);
      socket.write('E');
      jest.advanceTimersByTime(2001);
      expect(socket.destroyed).toBe(true);
      expect(got).toHaveLength(0);
    });

    it('counts the connections still sending their request line per address, and frees them', async () => {
      const d = door(2);
      const a1 = fakeSocket('192.0.2.1');
      const a2 = fakeSocket('192.0.2.1');
      const b1 = fakeSocket('192.0.2.2');
      for (const s of [a1, a2, b1]) firstBytes(s, () => undefined, d);
      expect(d.pending.of('192.0.2.1')).toBe(2);
      // The third from the same address is refused at once, with the stable code.
      const a3 = fakeSocket('192.0.2.1');
      let answer = '';
      a3.on('data', (c: Buffer) => (answer += c.toString()));
      firstBytes(a3, () => undefined, d);
      await new Promise((r) => setImmediate(r));
      expect(answer).toMatch(/^HTTP\/1\.1 429 /);
      expect(answer).toContain('"code":"TOO_MANY_CONNECTIONS"');
      expect(d.pending.of('192.0.2.1')).toBe(2);
      // A request line frees its place; so does a close.
      a1.write('GET / HTTP/1.1\r\n');
      a2.destroy();
      await new Promise((r) => setImmediate(r));
      expect(d.pending.of('192.0.2.1')).toBe(0);
      expect(d.pending.of('192.0.2.2')).toBe(1);
      b1.destroy();
      a3.destroy();
      await new Promise((r) => setImmediate(r));
      expect(d.pending.of('192.0.2.2')).toBe(0);
    });
  });
});
