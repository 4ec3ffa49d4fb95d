import { SSE_PATH, WS_BEARER_PREFIX, WS_PATH, WS_PROTOCOL, WS_CLOSE_SERVICE_RESTART, WS_RETRY_PREFIX } from '../../../src/shared/wire';
import { eventField, platformGlobal, sseHeaders, streamUrl, type FeedFactory, type FeedHandlers, type FeedRequest, type FetchLike, type PriceFeed, type WebSocketConstructor, type WebSocketLike } from './price-feed';
import { refusalOf, type Refusal } from './refusal';
import { DELTA_WITHOUT_BASE, DeltaBook } from './delta-book';
import { asWsMessage, parseJson } from './wire-guards';

/** WebSocket.CONNECTING, without needing the class. */
const CONNECTING = 0;

/**
 * Plain WebSocket: one JSON frame per event (`WsMessage`); the resume point goes in the query.
 *
 * The service refuses a bad request before the upgrade, with an HTTP status and an error body
 * that a WebSocket never shows (browsers and Node's own say only "error", then close 1006; the
 * `ws` package names the status). So when a connection fails before it opens, the feed asks the
 * service why: the same request to the SSE path, which the same checks answer with the same
 * status and code (an answer that is a stream is closed at once, and counts as no refusal).
 */
export const createWebSocketFeed: FeedFactory = (request, options) => {
  let socket: WebSocketLike | null = null;
  /** Bumped on every start and stop: a late probe of an abandoned attempt is ignored. */
  let attempt = 0;

  const feed: PriceFeed = {
    kind: 'websocket',
    start(handlers: FeedHandlers) {
      feed.stop();
      const mine = ++attempt;
      const WebSocketImpl = options.WebSocket ?? platformGlobal<WebSocketConstructor>('WebSocket');
      if (!WebSocketImpl) {
        handlers.closed('no WebSocket on this platform', { code: 'NO_WEBSOCKET', status: null, message: 'the websocket transport needs WebSocket (Node 22+ or a browser): pass one in the options' });
        return;
      }
      const req = request();
      const url = streamUrl(options.baseUrl, WS_PATH, req);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      // A token goes as a subprotocol beside the one the server selects (never in the URL, which proxies log).
      const ws = !req.token ? new WebSocketImpl(url.href) : new WebSocketImpl(url.href, [WS_PROTOCOL, `${WS_BEARER_PREFIX}${req.token}`]);
      socket = ws;
      let opened = false;
      const book = new DeltaBook();
      const live = (): boolean => socket === ws;
      const close = (reason: string, refusal?: Refusal, retryMs?: number): void => {
        if (!live()) return;
        feed.stop();
        handlers.closed(reason, refusal, retryMs);
      };
      /** Never opened: find out whether the service refused the request, then report. */
      const failed = (reason: string, status: number | null): void => {
        if (!live()) return;
        feed.stop();
        const current = (): boolean => attempt === mine + 1 && socket === null;
        void whyRefused(options.baseUrl, req, options.fetch).then((refusal) => {
          if (!current()) return;
          // A status `ws` named, without a body to read, is still a refusal.
          if (!refusal && status !== null) handlers.closed(reason, { code: null, status, message: reason });
          else handlers.closed(refusal ? `refused: ${refusal.code ?? refusal.status}: ${refusal.message}` : reason, refusal ?? undefined);
        });
      };
      ws.addEventListener('open', () => {
        opened = true;
        if (live()) handlers.open();
      });
      ws.addEventListener('message', (e) => {
        const data = live() ? parseJson(eventField(e, 'data')) : undefined;
        if (Array.isArray(data)) {
          // A delta, `[id, pair, ...values]`: the one message that is an array.
          const tick = book.apply(data[0], data.slice(1));
          if (tick) handlers.tick(tick);
          else close(DELTA_WITHOUT_BASE);
          return;
        }
        const msg = asWsMessage(data);
        if (!msg) return;
        if (msg.type === 'price') {
          const { type: _type, ...tick } = msg;
          handlers.tick(book.full(tick));
        } else if (msg.type === 'reset') {
          const { type: _type, ...reset } = msg;
          book.clear();
          handlers.reset(reset);
        } else if (msg.type === 'status') {
          const { type: _type, ...status } = msg;
          handlers.pairStatus(status);
        } else if (msg.type === 'error') {
          close(`${msg.code}: ${msg.message}`, { code: msg.code, status: null, message: msg.message });
        }
      });
      ws.addEventListener('close', (e) => {
        const code = eventField(e, 'code');
        const reason = `socket closed (${String(code ?? 'no code')})`;
        // 1012 (a restart) names this connection's own reconnect delay: `...; retry=<ms>`.
        const text = eventField(e, 'reason');
        const hint = code === WS_CLOSE_SERVICE_RESTART && typeof text === 'string' ? new RegExp(`${WS_RETRY_PREFIX}(\\d+)$`).exec(text) : null;
        if (opened) close(reason, undefined, hint ? Number(hint[1]) : undefined);
        else failed(reason, null);
      });
      // `ws` names a refused upgrade's status in the error ("Unexpected server response: 400"),
      // then closes; Node 22's WebSocket may raise the error alone. Without a listener Node would throw.
      ws.addEventListener('error', (e) => {
        if (opened) return;
        const text = eventField(e, 'message');
        const status = typeof text === 'string' ? /server response: (\d{3})/.exec(text)?.[1] : undefined;
        failed(`could not connect${typeof text === 'string' && text !== '' ? `: ${text}` : ''}`, status === undefined ? null : Number(status));
      });
    },
    stop() {
      attempt += 1;
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

/**
 * Asks the SSE path with the same request whether the service refuses it: the refusal when it
 * does, null when it serves it (that stream is cancelled at once) or cannot be asked.
 */
async function whyRefused(baseUrl: string, req: FeedRequest, fetchOption: FetchLike | undefined): Promise<Refusal | null> {
  const fetchImpl = fetchOption ?? platformGlobal<FetchLike>('fetch');
  if (!fetchImpl) return null;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 5_000);
  try {
    const res = await fetchImpl(streamUrl(baseUrl, SSE_PATH, req).href, { headers: sseHeaders(req), signal: abort.signal, cache: 'no-store' });
    if (res.ok) return null;
    return await refusalOf(res);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
