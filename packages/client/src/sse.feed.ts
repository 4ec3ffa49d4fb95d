import { SSE_PATH } from '../../../src/shared/wire';
import { platformGlobal, sseHeaders, streamUrl, type FeedFactory, type FeedHandlers, type FetchLike, type PriceFeed } from './price-feed';
import { refusalOf } from './refusal';
import { SseParser } from './sse-parser';
import { DELTA_WITHOUT_BASE, DeltaBook } from './delta-book';
import { asPairStatus, asReset, asTick, parseJson } from './wire-guards';

/**
 * How long an open stream may send nothing before it is taken for dead (a NAT that dropped it, a
 * laptop that slept): three of the server's heartbeats (a comment every 15 s by default).
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

/**
 * Server-Sent Events, read with `fetch` in Node 22+ and in browsers alike: no EventSource to
 * inject, and the library sees what EventSource hides, the HTTP status and the error body of a
 * refusal. EventSource's own reconnect is not needed either: Connection decides when to come
 * back (the resume point goes in `lastEventId`), the same for every transport.
 */
export const createSseFeed: FeedFactory = (request, options) => {
  let running: AbortController | null = null;

  const feed: PriceFeed = {
    kind: 'sse',
    start(handlers: FeedHandlers) {
      feed.stop();
      const fetchImpl = options.fetch ?? platformGlobal<FetchLike>('fetch');
      if (!fetchImpl) {
        handlers.closed('no fetch on this platform', { code: 'NO_FETCH', status: null, message: 'the sse transport needs fetch (Node 22+ or a browser): pass one in the options' });
        return;
      }
      const abort = new AbortController();
      running = abort;
      const live = (): boolean => running === abort;
      const req = request();
      const url = streamUrl(options.baseUrl, SSE_PATH, req).href;
      const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
      let idle: ReturnType<typeof setTimeout> | undefined;
      let idleFor = 0;
      // Rearmed by every chunk; when it fires the read fails and the connection comes back.
      const watch = idleMs <= 0 ? () => undefined : () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          idleFor = idleMs;
          abort.abort(new Error(`no data for ${idleMs} ms`));
        }, idleMs);
      };
      abort.signal.addEventListener('abort', () => clearTimeout(idle), { once: true });
      void read(fetchImpl, url, sseHeaders(req), abort.signal, handlers, live, watch).then(
        ({ reason, refusal, retryMs }) => {
          if (!live()) return;
          feed.stop();
          handlers.closed(reason, refusal, retryMs);
        },
        (err: unknown) => {
          if (!live()) return;
          feed.stop();
          handlers.closed(idleFor > 0 ? `event stream idle for ${idleFor} ms` : `event stream interrupted: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    },
    stop() {
      running?.abort();
      running = null;
    },
  };
  return feed;
};

type Ended = { reason: string; refusal?: Awaited<ReturnType<typeof refusalOf>>; retryMs?: number };

/** Opens the stream and reads it until it ends; events go to the handlers while `live()`. */
async function read(fetchImpl: FetchLike, url: string, headers: Record<string, string>, signal: AbortSignal, handlers: FeedHandlers, live: () => boolean, watch: () => void): Promise<Ended> {
  const res = await fetchImpl(url, { headers, signal, cache: 'no-store' });
  if (!res.ok) {
    const refusal = await refusalOf(res);
    return { reason: `refused: ${refusal.code ?? refusal.status}: ${refusal.message}`, refusal };
  }
  const type = res.headers.get('content-type') ?? '';
  if (!res.body || !type.toLowerCase().startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { reason: `not an event stream (HTTP ${res.status}, ${type || 'no content type'})` };
  }
  handlers.open();
  watch();
  const book = new DeltaBook();
  let broken: string | undefined;
  const parser = new SseParser((event) => {
    if (!live() || broken !== undefined) return;
    if (event.type === 'price') {
      const tick = asTick(parseJson(event.data));
      if (tick) handlers.tick(book.full(tick));
    } else if (event.type === 'd') {
      const tick = book.apply(event.lastEventId, parseJson(event.data));
      if (tick) handlers.tick(tick);
      else broken = DELTA_WITHOUT_BASE;
    } else if (event.type === 'reset') {
      const reset = asReset(parseJson(event.data));
      book.clear();
      if (reset) handlers.reset(reset);
    } else if (event.type === 'status') {
      const status = asPairStatus(parseJson(event.data));
      if (status) handlers.pairStatus(status);
    }
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    // The stream's first `retry:` is SSE_RETRY_MS, sent on connect; a later one came as the
    // stream ended (a shutdown): this stream's own reconnect hint.
    if (done) return { reason: 'event stream ended', ...(parser.retryCount > 1 && parser.retryMs !== null ? { retryMs: parser.retryMs } : {}) };
    watch();
    parser.push(decoder.decode(value, { stream: true }));
    if (broken !== undefined) {
      return { reason: broken };
    }
  }
}
