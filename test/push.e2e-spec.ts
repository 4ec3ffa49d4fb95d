import type { Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { FakePushServer, type PushExchange } from './support/fake-push';
import { FakeUpstream } from './support/fake-upstream';
import { metricSample } from './support/metrics';
import { openStream } from './support/sse';
import { IngestPolicy } from '../src/ingest/ingest-policy';
import { sleep, waitFor } from './support/wait';

type PushStatus = { source: string; connected: boolean; up: string[]; refused: string[]; reconnects: number };

describe.each<PushExchange>(['kraken', 'coinbase'])('the %s push feed', (exchange) => {
  let rest: FakeUpstream;
  let push: FakePushServer;
  let t: TestApp | undefined;

  const latest = async (): Promise<Tick | null> => {
    const res = await fetch(`${t?.url}/api/prices/BTC-USD`);
    return res.status === 200 ? ((await res.json()) as Tick) : null;
  };
  const pushStatus = async (): Promise<PushStatus> =>
    ((await (await fetch(`${t?.url}/health/ready`)).json()) as { details: { sources: { push: PushStatus[] } } }).details.sources.push[0];
  const start = async (env: Record<string, string> = {}): Promise<TestApp> => {
    t = await startApp({ ...rest.env(), ...push.env(), PAIRS: 'BTC-USD', PRICE_SOURCES: exchange, POLL_INTERVAL_MS: '200', PUSH_STALE_MS: '500', ...env });
    return t;
  };
  const pushIsUp = () => waitFor(async () => (await pushStatus()).up.includes('BTC-USD'), 5000);

  beforeEach(async () => {
    rest = await FakeUpstream.start();
    push = await FakePushServer.start(exchange, { heartbeatMs: 100 });
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await push.close();
    await rest.close();
  });

  it('delivers a pushed trade to an SSE subscriber at once, with the exchange time, not at the next poll', async () => {
    await start({ POLL_INTERVAL_MS: '3600000' });
    await pushIsUp();
    const sse = await openStream(`${t?.url}/api/prices/stream?pairs=BTC-USD`);
    try {
      await sse.until((s) => s.ticks().length === 1);
      const sent = new Date();
      push.push('BTC-USD', 97111.5, sent);
      await sse.until((s) => s.ticks().length === 2, 2000);
      const tick = JSON.parse(sse.frames().filter((f) => f.event === 'price')[1].data ?? '') as Tick;
      expect(tick).toMatchObject({ price: 97111.5, source: exchange, sourceTimestamp: sent.toISOString() });
    } finally {
      sse.close();
    }
    expect(rest.requestCount(exchange)).toBe(1); // the start-up poll only: the hourly poll never came
  });

  it('serves from the push feed without REST requests while it is up', async () => {
    await start();
    await pushIsUp();
    rest.resetCounts();
    await sleep(1000); // ~5 polls
    expect(rest.requestCount(exchange)).toBe(0);
    push.push('BTC-USD', 97222.5);
    await waitFor(async () => (await latest())?.price === 97222.5, 2000);
  });

  it('falls back to REST within PUSH_STALE_MS plus one poll when the feed stalls, and comes back when it recovers', async () => {
    await start();
    await pushIsUp();
    push.fail('stall');
    rest.setPrice('BTC-USD', 97333.5);
    const waited = await waitFor(async () => (await latest())?.price === 97333.5, 5000);
    expect(waited).toBeLessThan(500 + 200 + 1500); // PUSH_STALE_MS + one poll, with room for a loaded machine
    expect(rest.requestCount(exchange)).toBeGreaterThan(1);

    // The stalled connection is replaced (and the new one stalls too, until the fake recovers).
    await waitFor(() => push.connections >= 2, 5000);
    push.recover();
    await pushIsUp();
    push.push('BTC-USD', 97444.5);
    await waitFor(async () => (await latest())?.price === 97444.5, 2000);
    rest.resetCounts();
    await sleep(600);
    expect(rest.requestCount(exchange)).toBe(0);
  }, 20000);

  it('reconnects and resubscribes after the connection drops', async () => {
    await start();
    await pushIsUp();
    push.drop();
    await waitFor(() => push.connections >= 2 && push.subscribed().includes('BTC-USD'), 5000);
    await pushIsUp();
    push.push('BTC-USD', 97555.5);
    await waitFor(async () => (await latest())?.price === 97555.5, 2000);
  });

  it('serves the pair from REST when the subscription is refused', async () => {
    push.fail('subscription_error');
    await start();
    await waitFor(async () => (await pushStatus()).refused.includes('BTC-USD'), 5000);
    rest.setPrice('BTC-USD', 97666.5);
    await waitFor(async () => (await latest())?.price === 97666.5, 3000);
    expect((await pushStatus()).up).toEqual([]);
  });

  it('never publishes a garbage frame and serves from REST meanwhile', async () => {
    await start();
    await pushIsUp();
    push.fail('garbage');
    push.push('BTC-USD', 1);
    rest.setPrice('BTC-USD', 97777.5);
    await waitFor(async () => (await latest())?.price === 97777.5, 5000);
    expect((await pushStatus()).up).toEqual([]);
  });

  it('never takes a trade pushed under another symbol for the pair', async () => {
    await start({ POLL_INTERVAL_MS: '3600000' });
    await pushIsUp();
    push.fail('wrong_symbol');
    push.push('BTC-USD', 97888.5); // sent as ETH/USD 3000.5
    push.recover();
    push.push('BTC-USD', 97999.5);
    await waitFor(async () => (await latest())?.price === 97999.5, 2000);
    const history = (await (await fetch(`${t?.url}/api/prices/BTC-USD/history`)).json()) as { updates: Tick[] };
    expect(history.updates.map((u) => u.price)).not.toContain(3000.5);
  });
});

describe.each<PushExchange>(['kraken', 'coinbase'])('the %s push feed when the exchange misbehaves', (exchange) => {
  let rest: FakeUpstream;
  let push: FakePushServer;
  let t: TestApp | undefined;

  const latest = async (): Promise<Tick | null> => {
    const res = await fetch(`${t?.url}/api/prices/BTC-USD`);
    return res.status === 200 ? ((await res.json()) as Tick) : null;
  };
  const pushStatus = async (): Promise<PushStatus> =>
    ((await (await fetch(`${t?.url}/health/ready`)).json()) as { details: { sources: { push: PushStatus[] } } }).details.sources.push[0];
  const start = async (env: Record<string, string> = {}): Promise<TestApp> => {
    t = await startApp({ ...rest.env(), ...push.env(), PAIRS: 'BTC-USD', PRICE_SOURCES: exchange, POLL_INTERVAL_MS: '3600000', PUSH_STALE_MS: '2000', ...env });
    return t;
  };
  const pushIsUp = () => waitFor(async () => (await pushStatus()).up.includes('BTC-USD'), 5000);
  const metric = (name: string, labels: Record<string, string>) => metricSample(t?.url ?? '', name, { source: exchange, ...labels });
  const historyPrices = async (): Promise<number[]> =>
    ((await (await fetch(`${t?.url}/api/prices/BTC-USD/history`)).json()) as { updates: Tick[] }).updates.map((u) => u.price);

  beforeEach(async () => {
    rest = await FakeUpstream.start();
    push = await FakePushServer.start(exchange, { heartbeatMs: 100 });
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await push.close();
    await rest.close();
  });

  it('closes the connection at a 10 MB frame, counts it and reconnects with backoff', async () => {
    await start();
    await pushIsUp();
    push.huge('BTC-USD', 10 * 1024 * 1024);
    await waitFor(() => push.closeCodes.includes(1009), 5000);
    const closedAt = Date.now();
    await waitFor(() => push.connections >= 2, 5000);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(200); // the first backoff: 500 ms with jitter down to half
    await pushIsUp();
    expect(await metric('price_stream_push_reconnects_total', { reason: 'too_large' })).toBe(1);
    push.push('BTC-USD', 97123.5);
    await waitFor(async () => (await latest())?.price === 97123.5, 2000);
  }, 20000);

  it('coalesces a flood of 5,000 frames a second: the latest wins, ticks stay within MIN_TICK_INTERVAL_MS, REST answers promptly', async () => {
    await start({ MIN_TICK_INTERVAL_MS: '250', PUSH_STALE_MS: '5000' });
    await pushIsUp();
    // What the feed hands the policy (its sink calls `pushed`), counted on the way.
    const policy = t?.app.get(IngestPolicy) as unknown as { pushed(source: string, quote: unknown): void };
    const handedOn = jest.spyOn(policy, 'pushed');
    const sse = await openStream(`${t?.url}/api/prices/stream?pairs=BTC-USD`);
    try {
      await sse.until((s) => s.ticks().length === 1);
      const framesBefore = await metric('price_stream_push_frames_total', { kind: 'quote' });
      const floodStart = Date.now();
      const flooding = push.flood('BTC-USD', { perSecond: 5000, ms: 2000, from: 97000 });
      await sleep(700);
      const asked = Date.now();
      const res = await fetch(`${t?.url}/api/prices/BTC-USD`);
      const restMs = Date.now() - asked;
      expect(res.status).toBe(200);
      const { sent, last } = await flooding;
      await waitFor(async () => (await latest())?.price === last, 3000);
      const floodMs = Date.now() - floodStart;
      const ticks = sse.ticks().length - 1;

      expect(sent).toBeGreaterThan(5000);
      expect(restMs).toBeLessThan(1000);
      expect(ticks).toBeGreaterThan(1);
      expect(ticks).toBeLessThanOrEqual(Math.ceil(floodMs / 250) + 1);
      // Every frame is read and counted, but only the latest quote of each turn goes on to the policy.
      expect((await metric('price_stream_push_frames_total', { kind: 'quote' })) - framesBefore).toBe(sent);
      expect(handedOn.mock.calls.length).toBeLessThan(sent / 10);
    } finally {
      sse.close();
    }
  }, 30000);

  it('ignores a ticker for a pair it never subscribed to: not published, not counted as a quote', async () => {
    await start();
    await pushIsUp();
    const quotes = await metric('price_stream_push_frames_total', { kind: 'quote' });
    push.pushUnasked('ETH-USD', 3000.5);
    push.pushUnasked('SOL-USD', 150.5);
    await waitFor(async () => (await metric('price_stream_push_frames_total', { kind: 'ignored' })) >= 2, 3000);
    expect(await metric('price_stream_push_frames_total', { kind: 'quote' })).toBe(quotes);
    expect((await fetch(`${t?.url}/api/prices/ETH-USD`)).status).not.toBe(200);
    expect(await historyPrices()).not.toContain(3000.5);
  });

  it('replaces a connection whose subscription is never acknowledged after PUSH_ACK_TIMEOUT_MS, and REST serves the pair meanwhile', async () => {
    push.fail('no_ack');
    rest.setPrice('BTC-USD', 97666.5);
    await start({ POLL_INTERVAL_MS: '200', PUSH_STALE_MS: '10000', PUSH_ACK_TIMEOUT_MS: '300' });
    await waitFor(async () => (await latest())?.price === 97666.5, 3000);
    await waitFor(() => push.subscribed().includes('BTC-USD'), 3000);
    push.push('BTC-USD', 99000.5); // to a subscription never acknowledged: not ours to publish
    await waitFor(() => push.connections >= 3, 6000);
    expect(await metric('price_stream_push_reconnects_total', { reason: 'ack_timeout' })).toBeGreaterThanOrEqual(2);
    expect((await pushStatus()).up).toEqual([]);
    expect((await latest())?.price).toBe(97666.5);
    expect(await historyPrices()).not.toContain(99000.5);

    push.recover();
    await pushIsUp();
    push.push('BTC-USD', 97777.5);
    await waitFor(async () => (await latest())?.price === 97777.5, 2000);
  }, 20000);

  it('never publishes a quote whose exchange time is an hour old or an hour ahead', async () => {
    await start({ STALE_AFTER_MS: '60000' }); // the hourly poll alone would allow three hours
    await pushIsUp();
    push.push('BTC-USD', 97101.5, new Date(Date.now() - 3_600_000));
    await waitFor(async () => (await metric('price_stream_prices_rejected_total', { reason: 'stale' })) === 1, 2000);
    push.push('BTC-USD', 97102.5, new Date(Date.now() + 3_600_000));
    await waitFor(async () => (await metric('price_stream_prices_rejected_total', { reason: 'implausible' })) === 1, 2000);
    push.push('BTC-USD', 97103.5);
    await waitFor(async () => (await latest())?.price === 97103.5, 2000);
    const prices = await historyPrices();
    expect(prices).not.toContain(97101.5);
    expect(prices).not.toContain(97102.5);
  });

  it('exports its state, frames by kind, reconnects by reason and the age of its last quote', async () => {
    await start({ PUSH_STALE_MS: '500' });
    await pushIsUp();
    expect(await metric('price_stream_push_feed_state', { state: 'subscribed' })).toBe(1);
    expect(await metric('price_stream_push_feed_state', { state: 'disconnected' })).toBe(0);
    expect(await metric('price_stream_push_frames_total', { kind: 'ack' })).toBe(1);
    await waitFor(async () => (await metric('price_stream_push_frames_total', { kind: 'alive' })) > 0, 2000);
    expect(await metric('price_stream_push_last_quote_age_seconds', {})).toBeLessThan(5);

    push.fail('stall');
    await waitFor(async () => (await metric('price_stream_push_reconnects_total', { reason: 'stale' })) >= 1, 5000);
    expect(await metric('price_stream_push_feed_state', { state: 'subscribed' })).toBe(0);
    push.recover();
    await pushIsUp();
    expect(await metric('price_stream_push_feed_state', { state: 'subscribed' })).toBe(1);
  }, 20000);
});

describe('push feeds and the leader', () => {
  it('holds no exchange connection while the poller is disabled (not the leader)', async () => {
    const rest = await FakeUpstream.start();
    const push = await FakePushServer.start('kraken');
    const t = await startApp({ ...rest.env(), ...push.env(), PAIRS: 'BTC-USD', PRICE_SOURCES: 'kraken', POLL_INTERVAL_MS: '200' });
    try {
      const { PricePollerService } = await import('../src/ingest/price-poller.service');
      await waitFor(() => push.subscribed().length === 1, 5000);
      t.app.get(PricePollerService).setEnabled(false);
      await waitFor(() => push.subscribed().length === 0, 2000);
      const connections = push.connections;
      await sleep(300);
      expect(push.connections).toBe(connections);
      t.app.get(PricePollerService).setEnabled(true);
      await waitFor(() => push.subscribed().length === 1, 5000);
    } finally {
      await t.close();
      await push.close();
      await rest.close();
    }
  });
});
