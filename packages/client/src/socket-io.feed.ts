import { io, type Socket } from 'socket.io-client';
import { SOCKET_NAMESPACE, type ClientToServerEvents, type HandshakeAuth, type ServerToClientEvents } from '../../../src/shared/wire';
import type { FeedFactory, FeedHandlers, PriceFeed } from './price-feed';
import { asReset, asTick } from './wire-guards';

/**
 * Socket.IO on namespace /prices. The subscription and the resume point travel in the handshake
 * `auth` (read through a callback, so every connection carries the latest id). The manager's own
 * reconnection is off: Connection reconnects every transport the same way.
 */
export const createSocketIoFeed: FeedFactory = (request, options) => {
  let socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;

  const feed: PriceFeed = {
    kind: 'socketio',
    start(handlers: FeedHandlers) {
      feed.stop();
      const s: Socket<ServerToClientEvents, ClientToServerEvents> = io(new URL(SOCKET_NAMESPACE, options.baseUrl).href, {
        forceNew: true,
        reconnection: false,
        transports: ['websocket', 'polling'],
        tryAllTransports: true,
        auth: (cb) => {
          const { pairs, lastEventId, conflate } = request();
          const auth: HandshakeAuth = {
            pairs: [...pairs],
            ...(lastEventId !== null ? { lastEventId } : {}),
            ...(conflate !== null ? { conflate } : {}),
          };
          cb(auth);
        },
      });
      socket = s;
      const live = (): boolean => socket === s;
      const close = (reason: string): void => {
        if (!live()) return;
        feed.stop();
        handlers.closed(reason);
      };
      s.on('connect', () => live() && handlers.open());
      s.on('price', (t) => {
        const tick = live() ? asTick(t) : null;
        if (tick) handlers.tick(tick);
      });
      s.on('reset', (r) => {
        const reset = live() ? asReset(r) : null;
        if (reset) handlers.reset(reset);
      });
      s.on('connect_error', (err) => close(`could not connect: ${err.message}`));
      s.on('disconnect', (reason) => close(`disconnected: ${reason}`));
    },
    stop() {
      const s = socket;
      socket = null;
      s?.removeAllListeners();
      s?.disconnect();
    },
  };
  return feed;
};
