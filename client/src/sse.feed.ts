import { SSE_PATH } from '../../src/shared/wire';
import type { FeedFactory, FeedHandlers, PriceFeed } from './price-feed';
import { asReset, asTick, parseJson } from './wire-guards';

/**
 * Server-Sent Events. EventSource would reconnect by itself (with Last-Event-ID), but then its
 * delays and status would differ from the other transports', so an error closes it and
 * Connection decides when to come back; the resume point goes in `lastEventId`.
 */
export const createSseFeed: FeedFactory = (request) => {
  let source: EventSource | null = null;

  const feed: PriceFeed = {
    kind: 'sse',
    start(handlers: FeedHandlers) {
      feed.stop();
      const { pairs, lastEventId } = request();
      const url = new URL(SSE_PATH, location.origin);
      url.searchParams.set('pairs', pairs.join(','));
      if (lastEventId !== null) url.searchParams.set('lastEventId', lastEventId);
      const es = new EventSource(url);
      source = es;
      const live = (): boolean => source === es;
      es.addEventListener('open', () => live() && handlers.open());
      es.addEventListener('price', (e) => {
        const tick = live() ? asTick(parseJson(e.data)) : null;
        if (tick) handlers.tick(tick);
      });
      es.addEventListener('reset', (e) => {
        const reset = live() ? asReset(parseJson(e.data)) : null;
        if (reset) handlers.reset(reset);
      });
      es.addEventListener('error', () => {
        if (!live()) return;
        feed.stop();
        handlers.closed('event stream interrupted');
      });
    },
    stop() {
      source?.close();
      source = null;
    },
  };
  return feed;
};
