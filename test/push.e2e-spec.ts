import type { Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { FakePushServer, type PushExchange } from './support/fake-push';
import { FakeUpstream } from './support/fake-upstream';
import { openStream } from './support/sse';
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

describe('push feeds and the leader', () => {
  it('holds no exchange connection while the poller is disabled (not the leader)', async () => {
    const rest = await FakeUpstream.start();
    const push = await FakePushServer.start('kraken');
    const t = await startApp({ ...rest.env(), ...push.env(), PAIRS: 'BTC-USD', PRICE_SOURCES: 'kraken', POLL_INTERVAL_MS: '200' });
    try {
      const { PricePollerService } = await import('../src/poller/price-poller.service');
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
