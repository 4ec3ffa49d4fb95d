import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { firstBytes, sessionOwner } from './routing';

/** A stand-in for a paused net.Socket (no handle: nothing to stop at the libuv level). */
function fakeSocket(): Socket & PassThrough {
  const s = new PassThrough() as unknown as Socket & PassThrough;
  (s as unknown as { setTimeout: () => void }).setTimeout = () => undefined;
  s.pause();
  return s;
}

describe('routing', () => {
  it('names the worker of an engine.io session from the request line only', () => {
    expect(sessionOwner(Buffer.from('GET /socket.io/?EIO=4&transport=polling&sid=w3.abcdef HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(3);
    expect(sessionOwner(Buffer.from('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nCookie: sid=w3.x\r\n\r\n'))).toBeUndefined();
    expect(sessionOwner(Buffer.from('GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\n\r\n'))).toBeUndefined();
  });

  it('reads on until the request line is complete when it comes in pieces', () => {
    const socket = fakeSocket();
    const got: string[] = [];
    firstBytes(socket, (head) => got.push(head.toString('latin1')));
    socket.write('GET /socket.io/?EIO=4&transport=polling&s');
    socket.write('id=w2.abc HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(got).toHaveLength(1);
    expect(sessionOwner(Buffer.from(got[0], 'latin1'))).toBe(2);
    // Stopped after the request line: what follows stays unread for whoever takes the socket.
    socket.write('more');
    expect(got).toHaveLength(1);
  });
});
