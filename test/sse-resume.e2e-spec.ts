import { EventSource } from 'eventsource';
import type { ResetEvent, Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { sleep, tapStreamOpens, waitFor } from './support/sse';

type Seen = { kind: 'price'; tick: Tick; lastEventId: string } | { kind: 'reset'; reset: ResetEvent };

/** An `eventsource` client that records what it sees; `headers` go on every request (first connect included). */
function listen(url: string, headers: Record<string, string> = {}) {
  const seen: Seen[] = [];
  const ticks = () => seen.flatMap((s) => (s.kind === 'price' ? [s.tick] : []));
  let opens = 0;
  const es = new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...headers, ...init.headers } }),
  });
  /** How many ticks the client had when each connection opened. */
  const ticksAtOpen: number[] = [];
  es.addEventListener('open', () => {
    opens++;
    ticksAtOpen.push(ticks().length);
  });
  es.addEventListener('price', (e) => seen.push({ kind: 'price', tick: JSON.parse(e.data) as Tick, lastEventId: e.lastEventId }));
  es.addEventListener('reset', (e) => seen.push({ kind: 'reset', reset: JSON.parse(e.data) as ResetEvent }));
  return { es, seen, ticks, ids: () => ticks().map((t) => t.id), opens: () => opens, ticksAtOpen };
}

/** Records the server side of every SSE request, so a test can cut one and see the reconnect. */
function tapStreams(t: TestApp) {
  return tapStreamOpens(t.app);
}

/**
 * Publishes a new BTC-USD price every few ms until stopped: ticks keep coming while a
 * connection is cut and while the client reconnects.
 */
function ticker(t: TestApp) {
  const published: Tick[] = [];
  let price = 90_000;
  let running = true;
  const done = (async () => {
    while (running) {
      const tick = await t.publish('BTC-USD', price++);
      if (tick) published.push(tick);
      await sleep(3);
    }
  })();
  return { published, stop: async () => ((running = false), await done) };
}

/**
 * Cuts the live connection from the server side once the client has some ticks, lets the
 * client reconnect by itself, and checks that it got exactly every published tick after
 * `expectedFrom`, in order, with the reconnect carrying the last id it had seen.
 */
async function cutAndResume(t: TestApp, client: ReturnType<typeof listen>, requests: ReturnType<typeof tapStreams>, expectedFrom: (published: Tick[]) => Tick[]) {
  // Subscribed once the headers are out: from here on no tick can be missed.
  await waitFor(() => client.opens() === 1, 5000, () => 'not connected');
  const feed = ticker(t);
  try {
    await waitFor(() => client.ticks().length >= 5, 5000, () => `only ${client.ticks().length} ticks`);
    const lastBeforeCut = client.ids().at(-1)!;
    requests[0].res.destroy();
    const publishedAtCut = feed.published.length;
    await waitFor(() => requests.length === 2, 5000, () => 'no reconnect request');
    // Ticks published between the cut and the reconnect are the ones the resume must deliver.
    await waitFor(() => feed.published.length >= publishedAtCut + 3);
    await waitFor(() => client.opens() === 2, 5000, () => 'no second open');
    // Frames in flight at the cut may still arrive: the header is the last id of the first connection.
    const lastOfFirst = client.ids()[client.ticksAtOpen[1] - 1];
    expect(lastOfFirst >= lastBeforeCut).toBe(true);
    expect(requests[1].req.headers['last-event-id']).toBe(lastOfFirst);
    expect(feed.published.filter((tick) => tick.id > lastOfFirst).length).toBeGreaterThan(0);
    // Then live ticks over the new connection.
    await waitFor(() => feed.published.length >= publishedAtCut + 20);
  } finally {
    await feed.stop();
  }
  const expected = expectedFrom(feed.published).map((tick) => tick.id);
  await waitFor(() => client.ticks().length >= expected.length, 5000, () => JSON.stringify({ got: client.ids().length, expected: expected.length, opens: client.opens() }));
  await sleep(50);
  expect(client.ids()).toEqual(expected);
  expect(client.opens()).toBe(2);
  expect(client.seen.some((s) => s.kind === 'reset')).toBe(false);
  // Each event's lastEventId is its tick's id (the id: line).
  for (const s of client.seen) if (s.kind === 'price') expect(s.lastEventId).toBe(s.tick.id);
}

describe('SSE resume after a dropped connection', () => {
  let t: TestApp;
  let client: ReturnType<typeof listen> | undefined;
  beforeEach(async () => {
    t = await startApp({ PAIRS: 'BTC-USD,ETH-USD', SSE_RETRY_MS: '100' });
  });
  afterEach(async () => {
    client?.es.close();
    client = undefined;
    await t.close();
  });

  it('delivers exactly the missed ticks, then live ones, when the client reconnects with Last-Event-ID', async () => {
    const requests = tapStreams(t);
    const first = await t.publish('BTC-USD', 1);
    client = listen(`${t.url}/api/prices/stream?pairs=BTC-USD`);
    await cutAndResume(t, client, requests, (published) => [first!, ...published]);
  });

  it('resumes from the lastEventId parameter, and on reconnect lets the Last-Event-ID header win over it', async () => {
    const requests = tapStreams(t);
    const before: Tick[] = [];
    for (let i = 0; i < 5; i++) before.push((await t.publish('BTC-USD', 10 + i))!);
    client = listen(`${t.url}/api/prices/stream?pairs=BTC-USD&lastEventId=${before[2].id}`);
    await cutAndResume(t, client, requests, (published) => [before[3], before[4], ...published]);
    // The reconnect URL still carries the old lastEventId; the header took precedence (no duplicates above).
    expect(requests[1].req.url).toContain(`lastEventId=${before[2].id}`);
  });

  it('resumes from since (Unix ms, inclusive), and on reconnect from the last id', async () => {
    const requests = tapStreams(t);
    const before: Tick[] = [];
    for (let i = 0; i < 5; i++) {
      before.push((await t.publish('BTC-USD', 20 + i))!);
      await sleep(3); // one tick per millisecond at most, so since can name one exactly
    }
    // since means the ticks' own timestamps (docs/api.md), which may be a millisecond before their ids.
    const since = Date.parse(before[2].timestamp);
    client = listen(`${t.url}/api/prices/stream?pairs=BTC-USD&since=${since}`);
    await cutAndResume(t, client, requests, (published) => [before[2], before[3], before[4], ...published]);
  });
});

describe('SSE reset when the resume point is out of reach', () => {
  it('sends reset, then the latest tick of each pair, then live ticks when the id is older than the window', async () => {
    const t = await startApp({ PAIRS: 'BTC-USD,ETH-USD', HISTORY_SIZE: '3' });
    const client = { current: undefined as ReturnType<typeof listen> | undefined };
    try {
      const old = (await t.publish('BTC-USD', 100))!;
      for (let i = 1; i <= 4; i++) await t.publish('BTC-USD', 100 + i);
      const eth = (await t.publish('ETH-USD', 3000))!;
      const btc = t.stream.latest('BTC-USD')!;
      client.current = listen(`${t.url}/api/prices/stream`, { 'Last-Event-ID': old.id });
      await waitFor(() => client.current!.seen.length >= 3);
      const { oldestId } = t.stream.stats();
      const live = (await t.publish('ETH-USD', 3001))!;
      await waitFor(() => client.current!.seen.length >= 4);
      expect(client.current.seen).toEqual([
        { kind: 'reset', reset: { reason: 'history_gap', oldestId, oldestTimestamp: expect.any(String) } },
        { kind: 'price', tick: btc, lastEventId: btc.id },
        { kind: 'price', tick: eth, lastEventId: eth.id },
        { kind: 'price', tick: live, lastEventId: live.id },
      ]);
    } finally {
      client.current?.es.close();
      await t.close();
    }
  });

  it('sends reset for a since older than the window', async () => {
    const t = await startApp({ PAIRS: 'BTC-USD', HISTORY_SIZE: '2' });
    const client = { current: undefined as ReturnType<typeof listen> | undefined };
    try {
      for (let i = 0; i < 4; i++) await t.publish('BTC-USD', 200 + i);
      client.current = listen(`${t.url}/api/prices/stream?since=2020-01-01T00:00:00Z`);
      await waitFor(() => client.current!.seen.length >= 2);
      expect(client.current.seen[0]).toMatchObject({ kind: 'reset', reset: { reason: 'history_gap' } });
      expect(client.current.seen[1]).toMatchObject({ kind: 'price', tick: { price: 203 } });
    } finally {
      client.current?.es.close();
      await t.close();
    }
  });

  it('sends reset for an id from before a restart (a previous instance)', async () => {
    const before = await startApp({ PAIRS: 'BTC-USD' });
    let oldId: string;
    try {
      oldId = (await before.publish('BTC-USD', 300))!.id;
    } finally {
      await before.close();
    }
    await sleep(5);
    const t = await startApp({ PAIRS: 'BTC-USD' });
    const client = { current: undefined as ReturnType<typeof listen> | undefined };
    try {
      const fresh = (await t.publish('BTC-USD', 301))!;
      client.current = listen(`${t.url}/api/prices/stream`, { 'Last-Event-ID': oldId });
      await waitFor(() => client.current!.seen.length >= 2);
      expect(client.current.seen).toEqual([
        { kind: 'reset', reset: { reason: 'history_gap', oldestId: fresh.id, oldestTimestamp: fresh.timestamp } },
        { kind: 'price', tick: fresh, lastEventId: fresh.id },
      ]);
    } finally {
      client.current?.es.close();
      await t.close();
    }
  });
});
