import type { Counter } from 'prom-client';
import { FEED_STATES, FRAME_KINDS, type FrameKind, type PushFeed } from '../sources/push-feed';
import type { MetricsService } from './metrics.service';

/**
 * The push feeds' metrics: each feed reports its frames and replaced connections as they
 * happen (bound counters: a frame is on the hot path of a flood), and its state and the age of
 * its last quote are read at each scrape. A feed that does not run (not the leader, a worker
 * whose primary polls) shows no state and no age, so that the service's aggregate is the
 * running one's.
 */
export function observePushFeeds(feeds: Iterable<PushFeed>, metrics: MetricsService): void {
  const all = [...feeds];
  for (const feed of all) {
    const frames = Object.fromEntries(FRAME_KINDS.map((kind) => [kind, metrics.pushFrames.labels(feed.name, kind)])) as Record<FrameKind, ReturnType<Counter['labels']>>;
    feed.observer = {
      frame: (kind) => frames[kind].inc(),
      lost: (reason) => metrics.pushReconnects.inc({ source: feed.name, reason }),
    };
  }
  metrics.onScrape(() => {
    const now = Date.now();
    for (const feed of all) {
      const status = feed.status();
      const running = status.running;
      for (const state of FEED_STATES) {
        if (running) metrics.pushFeedState.set({ source: feed.name, state }, state === status.state ? 1 : 0);
        else metrics.pushFeedState.remove({ source: feed.name, state });
      }
      if (running && status.lastQuoteAt !== null) metrics.pushQuoteAge.set({ source: feed.name }, Math.max(0, now - Date.parse(status.lastQuoteAt)) / 1000);
      else metrics.pushQuoteAge.remove({ source: feed.name });
    }
  });
}
