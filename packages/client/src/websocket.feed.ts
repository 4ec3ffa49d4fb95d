import { WS_PATH } from '../../../src/shared/wire';
import { eventField, platformGlobal, streamUrl, type FeedFactory, type FeedHandlers, type PriceFeed, type WebSocketConstructor, type WebSocketLike } from './price-feed';
import { asWsMessage, parseJson } from './wire-guards';

/** WebSocket.CONNECTING, without needing the class. */
const CONNECTING = 0;

/** Plain WebSocket: one JSON frame per event (`WsMessage`); the resume point goes in the query. */
export const createWebSocketFeed: FeedFactory = (request, options) => {
  let socket: WebSocketLike | null = null;

  const feed: PriceFeed = {
    kind: 'websocket',
    start(handlers: FeedHandlers) {
      feed.stop();
      const WebSocketImpl = options.WebSocket ?? platformGlobal<WebSocketConstructor>('WebSocket');
      if (!WebSocketImpl) {
        handlers.closed('no WebSocket on this platform: pass one in the options');
        return;
      }
      const url = streamUrl(options.baseUrl, WS_PATH, request());
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocketImpl(url.href);
      socket = ws;
      const live = (): boolean => socket === ws;
      const close = (reason: string): void => {
        if (!live()) return;
        feed.stop();
        handlers.closed(reason);
      };
      ws.addEventListener('open', () => live() && handlers.open());
      ws.addEventListener('message', (e) => {
        const msg = live() ? asWsMessage(parseJson(eventField(e, 'data'))) : null;
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
      ws.addEventListener('close', (e) => close(`socket closed (${String(eventField(e, 'code') ?? 'no code')})`));
      // A refused upgrade: `ws` raises `error` (and then `close`); without a listener Node would throw.
      ws.addEventListener('error', () => undefined);
    },
    stop() {
      const ws = socket;
      socket = null;
      if (!ws) return;
      // Closing while still connecting makes the browser log an error; close once open instead.
      if (ws.readyState === CONNECTING) ws.addEventListener('open', () => ws.close(1000));
      else ws.close(1000);
    },
  };
  return feed;
};
