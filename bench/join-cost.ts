/**
 * CPU of the service per resume join: starts dist/main.js (2 pairs at 1 tick/s), lets ~19
 * ticks be published, then opens N streams at once, all resuming from the first tick's id, and
 * waits until each has its whole replay (up to the newest tick). Reported: the service's CPU
 * time (utime + stime from /proc) over that span, per join, and the wall time. With `redis` the
 * service uses REDIS_URL (default redis://127.0.0.1:6379) under a key prefix of its own, deleted
 * at the end. The transport is SSE (a raw socket) unless asked: `ws` (the plain WebSocket feed)
 * or `socketio` (the /prices namespace, the subscription in the handshake's auth as the client
 * library sends it), with the load generator's clients (bench/clients.ts).
 *
 *   node bench/dist/bench/join-cost.js [N=3000] [memory|redis] [sse|ws|socketio]
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { openSocketIo, openWsFeed, type StreamHandlers } from './clients';
import { deletePrefix } from './redis-stats';
import { freePort, metricSamples, sampleProc } from './service';

const root = process.env.ROOT ? path.resolve(process.env.ROOT) : path.resolve(__dirname, '..', '..', '..');
const n = Number(process.argv[2] ?? 3000);
const useRedis = (process.argv[3] ?? 'memory') === 'redis';
const transport = process.argv[4] ?? 'sse';
const TRANSPORTS = ['sse', 'ws', 'socketio'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long the N joins may take before the run fails (a stream refused or ended is never whole). */
const JOIN_DEADLINE_MS = 60_000;

/** An SSE stream on a raw socket; `onId` for each event's id. */
function sse(port: number, lastId: string | null, onId: (id: string) => void): Socket {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(`GET /api/prices/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n${lastId ? `Last-Event-ID: ${lastId}\r\n` : ''}\r\n`);
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const at = buffer.indexOf('\nid: ');
      const end = at === -1 ? -1 : buffer.indexOf('\n', at + 5);
      if (end === -1) break;
      onId(buffer.slice(at + 5, end).trim());
      buffer = buffer.slice(end);
    }
  });
  return socket;
}

async function main(): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new Error('N: a whole number of streams');
  if (!TRANSPORTS.includes(transport)) throw new Error(`the transport: one of ${TRANSPORTS.join(', ')}`);
  const host = '127.0.0.1';
  const port = await freePort(host);
  const prefix = `join-cost-${process.pid}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: host,
    PAIRS: 'BTC-USD,ETH-USD',
    PRICE_SOURCES: 'simulated',
    POLL_INTERVAL_MS: '1000',
    HISTORY_SIZE: '10000',
    MAX_STREAM_CONNECTIONS: String(n + 100),
    MAX_STREAM_CONNECTIONS_PER_IP: String(n + 100),
    LOG_LEVEL: 'warn',
    ...(useRedis ? { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, LEADER_TTL_MS: '1500' } : {}),
  };
  const service = spawn(process.execPath, [path.join(root, 'dist', 'main.js')], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const cpuMs = (): number => {
    const sample = sampleProc(service.pid!);
    if (!sample) throw new Error('the service is gone');
    return sample.cpuMs;
  };
  const sockets: { destroy(): void }[] = [];
  /** Why streams ended before they were whole (ws and socketio), by reason. */
  const ended = new Map<string, number>();
  /** A stream of the transport asked for, resuming after `lastId`: `onId` for each tick's id. */
  const open = (lastId: string, onId: (id: string) => void): { destroy(): void } => {
    if (transport === 'sse') return sse(port, lastId, onId);
    // No source address bound (unlike the load generator's clients): a bind to 127.0.0.1 beside the thousands of ports an
    // earlier run left in TIME_WAIT takes this process seconds of CPU, and the heads it then writes late get 408s.
    const ep = { host, port };
    const handlers: StreamHandlers = { open: () => undefined, tick: (id) => id !== undefined && onId(id), reset: () => undefined, close: (why) => ended.set(why, (ended.get(why) ?? 0) + 1) };
    const req = { pairs: ['BTC-USD', 'ETH-USD'], lastEventId: lastId, timeField: 'timestamp' };
    const conn =
      transport === 'ws'
        ? openWsFeed(ep, { ...req, path: '/api/prices/ws?pairs=BTC-USD,ETH-USD' }, handlers)
        : openSocketIo(ep, { ...req, path: '/socket.io/', namespace: '/prices', inHandshake: true }, handlers);
    return { destroy: () => conn.close() };
  };
  try {
    for (let i = 0; ; i++) {
      if (i === 300) throw new Error('the service did not get ready in 30 s');
      const ready = await fetch(`http://${host}:${port}/health/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      await sleep(100);
    }
    let first: string | null = null;
    let newest: string | null = null;
    let seen = 0;
    sockets.push(
      sse(port, null, (id) => {
        first ??= id;
        newest = id;
        seen++;
      }),
    );
    await sleep(9500);
    const want = newest;
    if (first === null || want === null) throw new Error('no tick in 9.5 s');
    const from: string = first;
    // The ticks after the first, up to the newest: what each join replays (the first stream goes on counting).
    const replayed = seen - 1;
    const startedAt = Date.now();
    const before = cpuMs();
    const clientBefore = process.cpuUsage();
    await new Promise<void>((resolve, reject) => {
      let whole = 0;
      const deadline = setTimeout(() => {
        const why = [...ended].map(([reason, count]) => `${count} ${reason}`).join(', ');
        reject(new Error(`${whole} of ${n} streams whole after ${JOIN_DEADLINE_MS / 1000} s${why ? ` (ended: ${why})` : ''}`));
      }, JOIN_DEADLINE_MS);
      for (let i = 0; i < n; i++) {
        let done = false;
        sockets.push(
          open(from, (id) => {
            if (done || id !== want) return;
            done = true;
            if (++whole < n) return;
            clearTimeout(deadline);
            resolve();
          }),
        );
      }
    });
    const cpu = cpuMs() - before;
    const client = process.cpuUsage(clientBefore);
    // The service's own count of its open streams by transport (the first SSE stream among them): the joins were of the transport asked for.
    const metrics = await fetch(`http://${host}:${port}/metrics`).then((r) => r.text());
    const streamsOpen = Object.fromEntries(metricSamples(metrics, 'price_stream_subscribers').map((m) => [m.labels.transport, m.value]));
    const result = { streams: n, transport, log: useRedis ? 'redis' : 'memory', replayedTicksEach: replayed, wallMs: Date.now() - startedAt, cpuMs: cpu, cpuPerJoinMs: Number((cpu / n).toFixed(3)), clientCpuMs: Math.round((client.user + client.system) / 1000), streamsOpen };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const socket of sockets) socket.destroy();
    service.kill('SIGINT');
    await new Promise((resolve) => service.once('exit', resolve));
    if (useRedis) await deletePrefix(redisUrl, prefix);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`join-cost: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
