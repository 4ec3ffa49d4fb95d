import { Logger } from '@nestjs/common';
import { FakePushServer } from '../../test/support/fake-push';
import { waitFor } from '../../test/support/wait';
import { KrakenWsFeed } from './kraken-ws.feed';
import type { FrameKind, LostReason } from './push-feed';
import type { Quote } from './price-source';

describe('WsPushFeed (against a fake Kraken feed)', () => {
  let push: FakePushServer;
  let feed: KrakenWsFeed | undefined;
  let quotes: Quote[];
  let frames: FrameKind[];
  let lost: LostReason[];

  const open = (options: { staleMs?: number; ackTimeoutMs?: number; maxFrameBytes?: number; now?: () => number } = {}): KrakenWsFeed => {
    const f = new KrakenWsFeed({ url: push.url, staleMs: 5000, baseBackoffMs: 50, maxBackoffMs: 100, ...options });
    f.observer = { frame: (kind) => frames.push(kind), lost: (reason) => lost.push(reason) };
    f.start(['BTC-USD'], (q) => quotes.push(q));
    feed = f;
    return f;
  };

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    push = await FakePushServer.start('kraken', { heartbeatMs: 50 });
    quotes = [];
    frames = [];
    lost = [];
  });
  afterEach(async () => {
    feed?.stop();
    feed = undefined;
    await push.close();
  });

  it('hands on the latest quote of a pair once per turn, however many frames the turn read', async () => {
    const f = open();
    await waitFor(() => f.status().up.includes('BTC-USD'));
    await waitFor(() => quotes.length === 1); // the snapshot
    const sent = 2000;
    for (let i = 1; i <= sent; i++) push.push('BTC-USD', 97000 + i / 100); // one burst, as a flooding exchange writes it
    await waitFor(() => quotes.at(-1)?.price === 97000 + sent / 100);
    expect(frames.filter((k) => k === 'quote')).toHaveLength(sent + 1); // every frame is counted...
    expect(quotes.length - 1).toBeLessThan(sent / 20); // ...but few are handed on
    expect(f.current('BTC-USD')?.price).toBe(97000 + sent / 100);
  });

  it('says subscribed once the pair is acknowledged, and stale when no frame came for staleMs', async () => {
    let clock = Date.now();
    const f = open({ now: () => clock, staleMs: 60_000 });
    expect(f.state()).toBe('disconnected'); // not open yet
    await waitFor(() => f.state() === 'subscribed');
    expect(f.status()).toMatchObject({ running: true, state: 'subscribed', lastQuoteAt: new Date(clock).toISOString() });
    clock += 60_001;
    expect(f.state()).toBe('stale');
    f.stop();
    expect(f.status()).toMatchObject({ running: false, state: 'disconnected' });
  });

  it('hands on no quote of an unacknowledged subscription, and replaces the connection after ackTimeoutMs', async () => {
    push.fail('no_ack');
    const f = open({ ackTimeoutMs: 200 });
    await waitFor(() => push.subscribed().includes('BTC-USD'));
    push.push('BTC-USD', 97001);
    await waitFor(() => lost.includes('ack_timeout'), 3000);
    expect(f.state()).not.toBe('subscribed');
    expect(quotes).toEqual([]);
    await waitFor(() => push.connections >= 2);
    push.recover();
    push.drop();
    await waitFor(() => f.status().up.includes('BTC-USD'), 3000);
    expect(quotes).toHaveLength(1);
  });

  it('closes the connection at a frame over maxFrameBytes (1009) and reconnects, counting the reason', async () => {
    const f = open({ maxFrameBytes: 4096 });
    await waitFor(() => f.status().up.includes('BTC-USD'));
    push.huge('BTC-USD', 8192);
    await waitFor(() => push.closeCodes.includes(1009));
    await waitFor(() => push.connections >= 2 && f.status().up.includes('BTC-USD'));
    expect(lost).toEqual(['too_large']);
    expect(frames).not.toContain('garbage');
  });

  it('counts a ticker for a pair it never asked for as ignored, not as a quote', async () => {
    const f = open();
    await waitFor(() => f.status().up.includes('BTC-USD'));
    const before = frames.filter((k) => k === 'quote').length;
    push.pushUnasked('SOL-USD', 150.5);
    await waitFor(() => frames.includes('ignored'));
    expect(frames.filter((k) => k === 'quote')).toHaveLength(before);
    expect(quotes.map((q) => q.pair)).toEqual(['BTC-USD']);
  });
});
