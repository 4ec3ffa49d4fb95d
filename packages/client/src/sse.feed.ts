import { SSE_PATH } from '../../../src/shared/wire';
import { eventField, platformGlobal, streamUrl, type EventSourceConstructor, type FeedFactory, type FeedHandlers, type PriceFeed } from './price-feed';
import { asReset, asTick, parseJson } from './wire-guards';

/**
 * Server-Sent Events. EventSource would reconnect by itself (with Last-Event-ID), but then its
 * delays and status would differ from the other transports', so an error closes it and
 * Connection decides when to come back; the resume point goes in `lastEventId`.
 */
export const createSseFeed: FeedFactory = (request, options) => {
  let source: InstanceType<EventSourceConstructor> | null = null;

  const feed: PriceFeed = {
    kind: 'sse',
    start(handlers: FeedHandlers) {
      feed.stop();
      const EventSourceImpl = options.EventSource ?? platformGlobal<EventSourceConstructor>('EventSource');
      if (!EventSourceImpl) {
        handlers.closed('no EventSource on this platform: pass one in the options');
        return;
      }
      const es = new EventSourceImpl(streamUrl(options.baseUrl, SSE_PATH, request()).href);
      source = es;
      const live = (): boolean => source === es;
      es.addEventListener('open', () => live() && handlers.open());
      es.addEventListener('price', (e) => {
        const tick = live() ? asTick(parseJson(eventField(e, 'data'))) : null;
        if (tick) handlers.tick(tick);
      });
      es.addEventListener('reset', (e) => {
        const reset = live() ? asReset(parseJson(eventField(e, 'data'))) : null;
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
