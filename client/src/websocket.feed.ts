import { WS_PATH } from '../../src/shared/wire';
import type { FeedFactory, FeedHandlers, PriceFeed } from './price-feed';
import { asWsMessage, parseJson } from './wire-guards';

/** Plain WebSocket: one JSON frame per event (`WsMessage`); the resume point goes in the query. */
export const createWebSocketFeed: FeedFactory = (request) => {
  let socket: WebSocket | null = null;

  const feed: PriceFeed = {
    kind: 'websocket',
    start(handlers: FeedHandlers) {
      feed.stop();
      const { pairs, lastEventId } = request();
      const url = new URL(WS_PATH, location.origin);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      url.searchParams.set('pairs', pairs.join(','));
      if (lastEventId !== null) url.searchParams.set('lastEventId', lastEventId);
      const ws = new WebSocket(url);
      socket = ws;
      const live = (): boolean => socket === ws;
      const close = (reason: string): void => {
        if (!live()) return;
        feed.stop();
        handlers.closed(reason);
      };
      ws.addEventListener('open', () => live() && handlers.open());
      ws.addEventListener('message', (e: MessageEvent<unknown>) => {
        const msg = live() ? asWsMessage(parseJson(e.data)) : null;
        if (!msg) return;
        if (msg.type === 'price') {
          const { type: _type, ...tick } = msg;
          handlers.tick(tick);
        } else if (msg.type === 'reset') {
          const { type: _type, ...reset } = msg;
          handlers.reset(reset);
        } else if (msg.type === 'error') {
          close(`${msg.code}: ${msg.message}`);
        }
      });
      ws.addEventListener('close', (e) => close(`socket closed (${e.code})`));
    },
    stop() {
      const ws = socket;
      socket = null;
      if (!ws) return;
      // Closing while still connecting makes the browser log an error; close once open instead.
      if (ws.readyState === WebSocket.CONNECTING) ws.addEventListener('open', () => ws.close(1000));
      else ws.close(1000);
    },
  };
  return feed;
};
