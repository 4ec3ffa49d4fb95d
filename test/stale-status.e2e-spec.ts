import { startApp, type TestApp } from './support/app';
import { FakeUpstream } from './support/fake-upstream';
import { ioClient, wsClient, wsOpen, connected } from './support/sockets';
import { openStream, parseFrames, type RawStream } from './support/sse';
import { waitFor } from './support/wait';
import type { PairStatus } from '../src/shared/wire';

/**
 * A stale price is never shown as fresh: when every source of a pair stops answering, every
 * transport says so within a second of STALE_AFTER_MS (`status` {pair, state:"stale", since}),
 * a subscriber that joins meanwhile hears it at once, and `fresh` follows when prices return.
 */
jest.setTimeout(30_000);

const sseStatuses = (s: RawStream): PairStatus[] =>
  parseFrames(s.text())
    .filter((f) => f.event === 'status')
    .map((f) => JSON.parse(f.data!) as PairStatus);

describe('stale status on every transport (fake upstream that stops answering)', () => {
  let fake: FakeUpstream;
  let t: TestApp;

  beforeAll(async () => {
    fake = await FakeUpstream.start();
    t = await startApp({ ...fake.env(), PRICE_SOURCES: 'kraken', PAIRS: 'BTC-USD', POLL_INTERVAL_MS: '200', STALE_AFTER_MS: '1500', SOURCE_BACKOFF_MAX_MS: '200' });
    await waitFor(() => t.stream.latest('BTC-USD') !== undefined, 10_000);
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it('says stale within a second of STALE_AFTER_MS, to joiners at once, and fresh when prices return', async () => {
    const sse = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`);
    const ws = wsClient(t.port, 'pairs=BTC-USD');
    await wsOpen(ws);
    const io = ioClient(t.url, { auth: { pairs: ['BTC-USD'] } });
    await connected(io.socket);
    const wsStatuses = () => ws.messages.filter((m) => m.type === 'status').map(({ type: _type, ...s }) => s as PairStatus);
    await waitFor(() => io.got.ticks.length > 0 && sse.ticks().length > 0 && ws.ticks().length > 0, 5000);
    expect([sseStatuses(sse), wsStatuses(), io.got.statuses]).toEqual([[], [], []]);

    fake.fail('kraken', 'http_500');
    const failedAt = Date.now();
    await waitFor(() => sseStatuses(sse).length > 0 && wsStatuses().length > 0 && io.got.statuses.length > 0, 5000);
    // The last fresh price came at most a poll before the failure; the status within a second of STALE_AFTER_MS after it.
    expect(Date.now() - failedAt).toBeLessThan(1500 + 1000);
    const stale = sseStatuses(sse)[0];
    expect(stale).toMatchObject({ pair: 'BTC-USD', state: 'stale' });
    expect(Date.parse(stale.since)).toBeLessThanOrEqual(failedAt);
    expect(wsStatuses()).toEqual([stale]);
    expect(io.got.statuses).toEqual([stale]);

    // A subscriber that joins now gets the latest (stale) price and the status at once, on each transport.
    const lateSse = await openStream(`${t.url}/api/prices/stream?pairs=BTC-USD`);
    const lateWs = wsClient(t.port, 'pairs=BTC-USD');
    const lateIo = ioClient(t.url, { auth: { pairs: ['BTC-USD'] } });
    await waitFor(() => sseStatuses(lateSse).length > 0 && lateWs.messages.some((m) => m.type === 'status') && lateIo.got.statuses.length > 0, 3000);
    expect(parseFrames(lateSse.text()).map((f) => f.event).filter((e) => e === 'price' || e === 'status')).toEqual(['price', 'status']);
    expect(lateWs.messages.map((m) => m.type)).toEqual(['price', 'status']);
    expect(lateIo.got.statuses).toEqual([stale]);

    fake.recover('kraken');
    await waitFor(() => sseStatuses(sse).length === 2 && wsStatuses().length === 2 && io.got.statuses.length === 2, 5000);
    const fresh = sseStatuses(sse)[1];
    expect(fresh).toMatchObject({ pair: 'BTC-USD', state: 'fresh' });
    expect(Date.parse(fresh.since)).toBeGreaterThan(Date.parse(stale.since));
    expect(wsStatuses()[1]).toEqual(fresh);
    expect(io.got.statuses[1]).toEqual(fresh);
    expect(sseStatuses(lateSse)).toEqual([stale, fresh]);

    for (const s of [sse, lateSse]) s.close();
    for (const w of [ws, lateWs]) w.ws.close();
    for (const c of [io, lateIo]) c.close();
  });
});
