import { EventEmitter } from 'node:events';
import type { FeedHandlers } from './price-feed';

/** A socket.io-client socket the test drives: `on` listeners, `fire` for the server's events. */
class FakeSocket extends EventEmitter {
  disconnect(): void {
    this.removeAllListeners();
  }
  fire(event: string, ...args: unknown[]): void {
    this.emit(event, ...args);
  }
}
const sockets: FakeSocket[] = [];
jest.mock('socket.io-client', () => ({
  io: () => {
    const s = new FakeSocket();
    sockets.push(s);
    return s;
  },
}));

import { createSocketIoFeed } from './socket-io.feed';

type Closed = { reason: string; retryMs?: number };

async function started(): Promise<{ socket: FakeSocket; closed: Closed[] }> {
  const closed: Closed[] = [];
  const feed = createSocketIoFeed(() => ({ pairs: ['BTC-USD'], lastEventId: null, conflate: null }), { baseUrl: 'http://prices.test' });
  const handlers: FeedHandlers = { open: () => undefined, tick: () => undefined, reset: () => undefined, pairStatus: () => undefined, closed: (reason, _refusal, retryMs) => closed.push({ reason, ...(retryMs === undefined ? {} : { retryMs }) }) };
  feed.start(handlers);
  for (let i = 0; i < 10 && sockets.length === 0; i += 1) await Promise.resolve();
  const socket = sockets.pop();
  if (!socket) throw new Error('no socket made');
  return { socket, closed };
}

describe('Socket.IO feed: the reconnect hint', () => {
  it("passes on the retryMs of the server's SHUTTING_DOWN notice with the disconnect that follows", async () => {
    const { socket, closed } = await started();
    socket.fire('connect');
    socket.fire('notice', { code: 'SHUTTING_DOWN', message: 'the server is restarting; reconnect and resume', retryMs: 734 });
    socket.fire('disconnect', 'transport close');
    expect(closed).toEqual([{ reason: 'disconnected: transport close', retryMs: 734 }]);
  });

  it('gives no hint for a disconnect without one, or with a retryMs that is no delay', async () => {
    for (const notice of [null, { code: 'SHUTTING_DOWN', message: 'x', retryMs: -5 }, { code: 'SHUTTING_DOWN', message: 'x', retryMs: '734' }, { code: 'RATE_LIMITED', message: 'x', retryMs: 734 }]) {
      const { socket, closed } = await started();
      socket.fire('connect');
      if (notice) socket.fire('notice', notice);
      socket.fire('disconnect', 'transport close');
      expect(closed).toEqual([{ reason: 'disconnected: transport close' }]);
    }
  });
});
