import net from 'node:net';
import { mulberry32 } from '../src/sources/simulated.source';
import { startCluster, type Cluster } from './support/cluster';
import { openStream, type RawStream } from './support/sse';
import { waitFor, within } from './support/wait';

/**
 * The reset storm (issue 21, D1): hostile clients open a request on every route family, in every
 * way a client may offer it (keep-alive, HTTP/1.0, `Upgrade: h2c` as `curl --http2` sends it),
 * and reset the connection at a random point of its life. Afterwards the service, and every
 * worker with WORKERS=2, is alive and was never restarted, and a subscriber that stayed
 * connected throughout got every tick.
 */
jest.setTimeout(120_000);

type Route = { family: string; path: string; upgrade?: 'websocket' };
const ROUTES: Route[] = [
  { family: 'rest', path: '/api/pairs' },
  { family: 'rest', path: '/api/prices?pairs=BTC-USD,ETH-USD' },
  { family: 'latest', path: '/api/prices/BTC-USD' },
  { family: 'history', path: '/api/prices/BTC-USD/history?limit=200' },
  { family: 'candles', path: '/api/prices/BTC-USD/candles?interval=1m&limit=30' },
  { family: 'sse', path: '/api/prices/stream?pairs=BTC-USD,ETH-USD' },
  { family: 'legacy', path: '/api/price/current' },
  { family: 'legacy', path: '/api/price/history' },
  { family: 'legacy', path: '/api/v1/ltp' },
  { family: 'legacy', path: '/api/price/stream' },
  { family: 'legacy', path: '/stream' },
  { family: 'websocket', path: '/api/prices/ws?pairs=BTC-USD', upgrade: 'websocket' },
  { family: 'websocket', path: '/api/ws', upgrade: 'websocket' },
  { family: 'socket.io polling', path: '/socket.io/?EIO=4&transport=polling' },
  { family: 'socket.io websocket', path: '/socket.io/?EIO=4&transport=websocket', upgrade: 'websocket' },
  { family: 'probes', path: '/health/live' },
  { family: 'probes', path: '/health/ready' },
  { family: 'probes', path: '/ready' },
  { family: 'metrics', path: '/metrics' },
  { family: 'docs', path: '/docs' },
  { family: 'docs', path: '/docs-json' },
];
const VARIANTS = ['keep-alive', 'http/1.0', 'h2c'] as const;
const POINTS = ['before-head', 'mid-head', 'after-head', 'mid-answer', 'mid-stream'] as const;
type Variant = (typeof VARIANTS)[number];
type Point = (typeof POINTS)[number];

function requestHead(route: Route, variant: Variant): string {
  const lines = [`GET ${route.path} HTTP/${variant === 'http/1.0' ? '1.0' : '1.1'}`, 'Host: 127.0.0.1', 'Accept: */*'];
  if (variant === 'h2c') lines.push('Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA');
  else if (route.upgrade) lines.push('Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==');
  else if (variant === 'keep-alive') lines.push('Connection: keep-alive');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Opens one request and resets it (TCP RST) at `point`; resolves with whether any answer byte came. */
function assault(port: number, route: Route, variant: Variant, point: Point, rand: () => number): Promise<boolean> {
  return new Promise((resolve) => {
    let answered = false;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const reset = () => {
      if (!socket.destroyed) socket.resetAndDestroy();
    };
    const bound = setTimeout(reset, 10_000); // an answer may be slow on a loaded machine; the storm waits for it
    socket.on('close', () => {
      clearTimeout(bound);
      resolve(answered);
    });
    socket.on('data', () => (answered = true));
    socket.once('connect', () => {
      const head = requestHead(route, variant);
      switch (point) {
        case 'before-head':
          return reset();
        case 'mid-head':
          socket.write(head.slice(0, 1 + Math.floor(rand() * (head.length - 4))));
          return void setTimeout(reset, rand() * 30);
        case 'after-head':
          socket.write(head);
          return void setTimeout(reset, rand() * 5);
        case 'mid-answer':
          socket.write(head);
          return void socket.once('data', reset);
        case 'mid-stream': {
          socket.write(head);
          // After a few chunks (a stream's next ticks, a long answer's next part), or a while.
          let chunks = 0;
          socket.on('data', () => ++chunks === 2 && setTimeout(reset, rand() * 150));
          return void setTimeout(reset, 300 + rand() * 400);
        }
      }
    });
  });
}

/** Every route × variant × point, `parallel` at a time, in a seeded random order. */
async function storm(port: number, seed: number, parallel = 24): Promise<{ total: number; midAnswers: number; unanswered: string[] }> {
  const rand = mulberry32(seed); // seeded: a failing storm can be run again as it was
  const jobs: { route: Route; variant: Variant; point: Point }[] = [];
  for (const route of ROUTES) for (const variant of VARIANTS) for (const point of POINTS) jobs.push({ route, variant, point });
  for (let i = jobs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [jobs[i], jobs[j]] = [jobs[j], jobs[i]];
  }
  let next = 0;
  let midAnswers = 0;
  const unanswered: string[] = [];
  const lane = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const answered = await assault(port, job.route, job.variant, job.point, rand);
      if (job.point === 'mid-answer') {
        midAnswers++;
        if (!answered) unanswered.push(`${job.variant} ${job.route.path}`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return { total: jobs.length, midAnswers, unanswered };
}

const idKey = (id: string) => id.split('-').map(Number) as [number, number];
const byId = (a: string, b: string) => {
  const [am, as] = idKey(a);
  const [bm, bs] = idKey(b);
  return am - bm || as - bs;
};

/** What the history holds of both pairs from `first` to `last`, in id order. */
async function historyIds(url: string, first: string, last: string): Promise<string[]> {
  const ids: string[] = [];
  for (const pair of ['BTC-USD', 'ETH-USD']) {
    // With WORKERS=2 the history may come from the other worker, whose copy of the log can be a
    // poll behind the one that served the stream: asked again until it holds a tick past `last`
    // (it gets the log in order, so it then holds everything up to `last`).
    // Not caught up within 5 s: the comparison below shows what is missing.
    let page: { updates: { id: string }[] } = { updates: [] };
    await waitFor(async () => {
      page = (await (await fetch(`${url}/api/prices/${pair}/history?limit=1000`)).json()) as typeof page;
      return page.updates.some((t) => byId(t.id, last) > 0);
    }, 5000).catch(() => undefined);
    ids.push(...page.updates.map((t) => t.id));
  }
  return ids.filter((id) => byId(id, first) >= 0 && byId(id, last) <= 0).sort(byId);
}

describe.each([
  ['one process', '1'],
  ['WORKERS=2', '2'],
])('the reset storm: %s', (_name, workers) => {
  let service: Cluster;
  let reader: RawStream;

  beforeAll(async () => {
    service = await startCluster({
      WORKERS: workers,
      POLL_INTERVAL_MS: '100',
      RATE_LIMIT_PER_MINUTE: '1000000',
      MAX_STREAM_CONNECTIONS_PER_IP: '1000',
      REQUEST_HEAD_TIMEOUT_MS: '3000',
    });
    reader = await openStream(`${service.url}/api/prices/stream?pairs=BTC-USD,ETH-USD`);
    expect(reader.status).toBe(200);
    await reader.until((s) => s.ticks().length >= 3, 15_000);
  });

  afterAll(async () => {
    reader?.close();
    await service?.stop();
  });

  it('every route family survives resets at every point, and a subscriber that stayed got every tick', async () => {
    const pidsBefore = service.workerPids();
    expect(pidsBefore.size).toBe(workers === '1' ? 0 : 2);
    const seed = Date.now() >>> 0;
    const result = await storm(service.port, seed);

    // Alive, serving, and (with workers) the same workers: none died and was restarted.
    expect({ seed, exitCode: service.proc.exitCode }).toEqual({ seed, exitCode: null });
    const live = await fetch(`${service.url}/health/live`);
    expect(live.status).toBe(200);
    const restarts = service.lines().filter((l) => /worker exited|failed to start/.test(String(l.msg)));
    expect({ seed, restarts }).toEqual({ seed, restarts: [] });
    expect(service.workerPids()).toEqual(pidsBefore);

    // The storm reached the handlers: every request reset mid-answer had its answer under way.
    expect(result.total).toBe(ROUTES.length * VARIANTS.length * POINTS.length);
    expect(result.midAnswers).toBe(ROUTES.length * VARIANTS.length);
    expect({ seed, unanswered: result.unanswered }).toEqual({ seed, unanswered: [] });

    // The subscriber that stayed: every tick from its first to its last, in order, none twice.
    const seen = reader.ticks().length;
    await reader.until((s) => s.ticks().length >= seen + 5, 10_000);
    const ids = reader.ticks().map((t) => t.id);
    expect(ids).toEqual(await historyIds(service.url, ids[0], ids[ids.length - 1]));
  });

  it('answers a 64 KB request line with our 414 JSON, not a bare status line', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(service.port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.write(`GET /api/prices/BTC-USD?x=${'a'.repeat(64 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 414 /);
    expect(answer.slice(answer.indexOf('\r\n\r\n') + 4)).toBe(JSON.stringify({ statusCode: 414, code: 'URI_TOO_LONG', message: 'request target longer than 8192 characters' }));
  });

  if (workers === '2') {
    it('closes a connection whose request line drips in slower than REQUEST_HEAD_TIMEOUT_MS (D3)', async () => {
      const opened = Date.now();
      const socket = net.connect(service.port, '127.0.0.1');
      socket.on('error', () => undefined);
      const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - opened)));
      // A byte every 200 ms and never a line end: an idle timeout would never fire.
      const drip = setInterval(() => socket.writable && socket.write('a'), 200);
      try {
        const after = await within(closed, 8000);
        expect(after).toBeGreaterThanOrEqual(2500);
        expect(after).toBeLessThan(6000);
      } finally {
        clearInterval(drip);
        socket.destroy();
      }
      await waitFor(() => service.proc.exitCode === null, 100);
    });
  }
});
