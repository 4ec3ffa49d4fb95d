import WebSocket from 'ws';
import { connect, type ConnectionStatus, type PriceClient, type PriceStreamError, type Tick, type Transport } from '../packages/client/src';
import type { ResetEvent } from '../src/shared/wire';
import { TRANSPORTS } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { startProxy, type CuttingProxy } from './support/proxy';
import { sleep, waitFor } from './support/wait';

/** Short delays so that a reconnect happens within the test; the policy itself is the default one. */
const TIMING = { backoff: { baseMs: 50, maxMs: 200, jitter: 'equal' as const }, settleMs: 300, stableMs: 5_000 };

type Recorded = { ticks: Tick[]; statuses: ConnectionStatus[]; resumed: number[]; resets: ResetEvent[]; errors: PriceStreamError[] };

/** Node 22+ has a WebSocket of its own; on an older Node the `ws` package stands in. */
const platform = typeof globalThis.WebSocket === 'function' ? {} : { WebSocket };

function record(client: PriceClient): Recorded {
  const got: Recorded = { ticks: [], statuses: [], resumed: [], resets: [], errors: [] };
  client.on('error', (e) => got.errors.push(e));
  client.on('price', (t) => got.ticks.push(t));
  client.on('status', (s) => got.statuses.push(s));
  client.on('resumed', (n) => got.resumed.push(n));
  client.on('reset', (r) => got.resets.push(r));
  return got;
}

/** The client library in Node against the real service, through a proxy that can cut the network. */
describe('client library (Node)', () => {
  let t: TestApp;
  let proxy: CuttingProxy;
  let client: PriceClient | undefined;

  beforeEach(async () => {
    t = await startApp();
    proxy = await startProxy(t.port);
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    await proxy.close();
    await t.close();
  });

  const open = (transport: Transport, extra: { conflate?: number; lastEventId?: string; pairs?: string[] } = {}): Recorded => {
    // SSE needs nothing injected: it reads the stream with fetch.
    client = connect({ baseUrl: proxy.url, transport, pairs: ['BTC-USD', 'ETH-USD'], ...platform, timing: TIMING, ...extra });
    return record(client);
  };
  const live = (got: Recorded) => waitFor(() => got.statuses.at(-1)?.state === 'live', 5000, () => JSON.stringify(got.statuses));

  for (const transport of TRANSPORTS) {
    it(`resumes over ${transport} after the network drops: every missed tick once, in order, and the count`, async () => {
      const got = open(transport);
      await live(got);
      const before = [...(await t.publishAll('BTC-USD', [100, 101])), ...(await t.publishAll('ETH-USD', [10]))];
      await waitFor(() => got.ticks.length === 3, 5000, () => JSON.stringify(got.ticks));

      proxy.cut();
      await waitFor(() => got.statuses.some((s) => s.state === 'reconnecting'), 5000, () => JSON.stringify(got.statuses));
      const missed = [...(await t.publishAll('ETH-USD', [11])), ...(await t.publishAll('BTC-USD', [102, 103]))];
      // The outage outlasts a delivery: the count treats ticks published within the fastest
      // delivery time before the reconnection as possibly live, so it can only err low.
      await sleep(300);
      const acceptedBefore = proxy.accepted;
      proxy.restore();

      await waitFor(() => got.ticks.length === 6, 10_000, () => JSON.stringify(got.ticks.map((x) => x.id)));
      expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
      const after = await t.publishAll('BTC-USD', [104]);
      await waitFor(() => got.resumed.length === 1 && got.ticks.length === 7, 5000, () => JSON.stringify(got));

      expect(got.ticks.map((x) => x.id)).toEqual([...before, ...missed, ...after].map((x) => x.id));
      expect(got.resumed).toEqual([3]);
      expect(got.resets).toEqual([]);
      expect(got.statuses.at(-1)).toEqual({ state: 'live' });
      const reconnecting = got.statuses.find((s): s is Extract<ConnectionStatus, { state: 'reconnecting' }> => s.state === 'reconnecting');
      // The first retry after a drop: full jitter over [0, baseMs] (no hint from the server).
      expect(reconnecting?.delayMs).toBeGreaterThanOrEqual(0);
      expect(reconnecting?.delayMs).toBeLessThanOrEqual(TIMING.backoff.baseMs);
    });

    for (const [pairs, code] of [
      [['DOGE-USD'], 'UNSUPPORTED_PAIR'],
      [['BTC-USD', 'not a pair'], 'INVALID_PAIR'],
    ] as const) {
      it(`stops at a permanent refusal over ${transport} (${code}) and reports it as an error with its code`, async () => {
        const got = open(transport, { pairs: [...pairs] });
        await waitFor(() => got.errors.length === 1, 5000, () => JSON.stringify(got.statuses));
        expect(got.errors[0]).toMatchObject({ name: 'PriceStreamError', code, transport });
        expect(got.errors[0]?.message).not.toBe('');
        if (transport === 'sse') expect(got.errors[0]?.status).toBe(400);
        expect(got.statuses.at(-1)).toMatchObject({ state: 'failed', code });
        const attempts = proxy.accepted;
        // With the test's backoff (50 to 200 ms) a retry would have come several times by now.
        await sleep(1000);
        expect(proxy.accepted).toBe(attempts);
        expect(got.statuses.filter((s) => s.state === 'reconnecting')).toEqual([]);
        expect(got.errors).toHaveLength(1);
      });
    }

    it(`keeps retrying over ${transport} while the service is unreachable, and says no error`, async () => {
      proxy.cut();
      const got = open(transport);
      await waitFor(() => got.statuses.filter((s) => s.state === 'reconnecting').length >= 3, 5000, () => JSON.stringify(got.statuses));
      expect(got.errors).toEqual([]);
      proxy.restore();
      await live(got);
    });

    it(`reports a reset over ${transport} when the resume point is older than the window, then the latest prices`, async () => {
      const [btc] = await t.publishAll('BTC-USD', [200]);
      const got = open(transport, { lastEventId: '1-0' });
      await waitFor(() => got.resets.length === 1 && got.ticks.length === 1, 5000, () => JSON.stringify(got));
      expect(got.resets[0]).toMatchObject({ reason: 'history_gap', oldestId: btc?.id });
      expect(got.ticks.map((x) => x.id)).toEqual([btc?.id]);
      expect(client?.lastEventId).toBe(btc?.id);
    });
  }

  it('asks for conflation: at most one tick per pair per interval, the latest, with skipped', async () => {
    const got = open('websocket', { conflate: 400 });
    await live(got);
    await t.publishAll('BTC-USD', [300, 301, 302, 303]);
    await waitFor(() => got.ticks.some((x) => x.price === 303), 5000, () => JSON.stringify(got.ticks));
    expect(got.ticks.length).toBeLessThan(4);
    expect(got.ticks.at(-1)?.skipped).toBeGreaterThan(0);
  });
});
