/**
 * CPU of the service per resume join: starts dist/main.js (2 pairs at 1 tick/s), lets ~19
 * ticks be published, then opens N streams at once, all resuming from the first tick's id, and
 * waits until each has its replay (up to the newest tick). Reported: the service's CPU time
 * (utime + stime from /proc) over that span, per join, and the wall time; `clientCpuMs`, the CPU
 * of this process' clients over the same span (when it nears the wall time, the wall time is
 * theirs); `streamsOpen`, the service's open streams by transport once all are in; `resumes`,
 * its resumes by outcome (every join must be `recovered`, or the run fails). With `redis` the
 * service uses REDIS_URL (default redis://127.0.0.1:6379) under a key prefix of its own, deleted
 * at the end; with `memory` it gets no Redis whatever the environment says. The transport is SSE
 * unless asked: `ws` (the plain WebSocket feed) or `socketio` (the /prices namespace, the
 * subscription in the handshake's auth as the client library sends it); every stream is one of
 * the load generator's clients (bench/clients.ts). `ROOT` points at another checkout's build.
 *
 *   node bench/dist/bench/join-cost.js [N=3000] [memory|redis] [sse|ws|socketio]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { openSocketIo, openSse, openWsFeed, type StreamHandlers } from './clients';
import { deletePrefix } from './redis-stats';
import { freePort, metricSamples, sampleProc } from './service';

const root = process.env.ROOT ? path.resolve(process.env.ROOT) : path.resolve(__dirname, '..', '..', '..');
const n = Number(process.argv[2] ?? 3000);
const log = process.argv[3] ?? 'memory';
const useRedis = log === 'redis';
const TRANSPORTS = ['sse', 'ws', 'socketio'] as const;
type Transport = (typeof TRANSPORTS)[number];
/** Checked in main: anything else is refused. */
const transport = (process.argv[4] ?? 'sse') as Transport;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long the N joins may take before the run fails (a stream refused or ended is never whole). */
const JOIN_DEADLINE_MS = 60_000;

async function main(): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new Error('N: a whole number of streams');
  if (log !== 'memory' && log !== 'redis') throw new Error('the tick log: memory or redis');
  if (!TRANSPORTS.includes(transport)) throw new Error(`the transport: one of ${TRANSPORTS.join(', ')}`);
  const host = '127.0.0.1';
  const port = await freePort(host);
  const prefix = `join-cost-${process.pid}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  // Memory means memory: a REDIS_URL (or Sentinels, or WORKERS) in the caller's environment is not passed on.
  const { REDIS_URL: _url, REDIS_SENTINELS: _sentinels, WORKERS: _workers, ...callers } = process.env;
  const env: Record<string, string> = {
    ...(callers as Record<string, string>),
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
  const exited = new Promise<void>((resolve) => service.once('exit', () => resolve()));
  const running = () => service.exitCode === null && service.signalCode === null;
  const cpuMs = (): number => {
    const sample = sampleProc(service.pid!);
    if (!sample) throw new Error('the service is gone');
    return sample.cpuMs;
  };
  const conns: { close(): void }[] = [];
  /** Why streams ended before they had their replay, by reason. */
  const ended = new Map<string, number>();
  /**
   * A stream of `kind` for both pairs, with the load generator's clients, resuming after `lastId`
   * if given: `onId` for each tick's id, `onEnd` when it ends. No source address is bound (unlike
   * the load generator's): a bind to 127.0.0.1 beside the thousands of ports an earlier run left
   * in TIME_WAIT takes this process seconds of CPU, and the heads it then writes late get 408s.
   */
  const open = (kind: Transport, lastId: string | undefined, onId: (id: string) => void, onEnd: (why: string) => void = () => undefined): void => {
    const ep = { host, port };
    const handlers: StreamHandlers = { open: () => undefined, tick: (id) => id !== undefined && onId(id), reset: () => undefined, close: onEnd };
    const req = { pairs: ['BTC-USD', 'ETH-USD'], lastEventId: lastId, timeField: 'timestamp' };
    if (kind === 'sse') conns.push(openSse(ep, { ...req, path: '/api/prices/stream?pairs=BTC-USD,ETH-USD' }, handlers));
    else if (kind === 'ws') conns.push(openWsFeed(ep, { ...req, path: '/api/prices/ws?pairs=BTC-USD,ETH-USD' }, handlers));
    else conns.push(openSocketIo(ep, { ...req, path: '/socket.io/', namespace: '/prices', inHandshake: true }, handlers));
  };
  try {
    for (let i = 0; ; i++) {
      if (i === 300) throw new Error('the service did not get ready in 30 s');
      if (!running()) throw new Error(`the service exited (${service.exitCode ?? service.signalCode}) before it was ready`);
      const ready = await fetch(`http://${host}:${port}/health/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      await sleep(100);
    }
    let first: string | null = null;
    let newest: string | null = null;
    let seen = 0;
    open('sse', undefined, (id) => {
      first ??= id;
      newest = id;
      seen++;
    });
    await sleep(9500);
    const want = newest;
    if (first === null || want === null || seen < 2) throw new Error(`${seen} ticks in 9.5 s: a replay needs at least 2`);
    const from: string = first;
    // The ticks the first stream saw after its first one, up to the newest: about what each join replays (the
    // first stream began with each pair's latest tick; it goes on counting during the joins).
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
        open(
          transport,
          from,
          (id) => {
            if (done || id !== want) return;
            done = true;
            if (++whole < n) return;
            clearTimeout(deadline);
            resolve();
          },
          (why) => {
            if (!done) ended.set(why, (ended.get(why) ?? 0) + 1);
          },
        );
      }
    });
    const wallMs = Date.now() - startedAt;
    const cpu = cpuMs() - before;
    const client = process.cpuUsage(clientBefore);
    // The service's own count of its open streams by transport (the first SSE stream among them): the joins were of the transport asked for.
    const metrics = await fetch(`http://${host}:${port}/metrics`).then((r) => r.text());
    const streamsOpen = Object.fromEntries(metricSamples(metrics, 'price_stream_subscribers').map((m) => [m.labels.transport, m.value]));
    // Each join a resume from the log, none a reset to the latest ticks (which would end at the newest tick too).
    const resumes = { recovered: 0, reset: 0, ...Object.fromEntries(metricSamples(metrics, 'price_stream_resumes_total').map((m) => [m.labels.outcome, m.value])) };
    if (resumes.recovered !== n || resumes.reset !== 0) throw new Error(`resumes: ${resumes.recovered} recovered and ${resumes.reset} reset, of ${n} joins`);
    const result = { streams: n, transport, log, replayedTicksEach: replayed, wallMs, cpuMs: cpu, cpuPerJoinMs: Number((cpu / n).toFixed(3)), clientCpuMs: Math.round((client.user + client.system) / 1000), streamsOpen, resumes };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const conn of conns) conn.close();
    if (running()) service.kill('SIGINT');
    await exited;
    if (useRedis) await deletePrefix(redisUrl, prefix).catch((err: unknown) => process.stderr.write(`join-cost: the Redis prefix ${prefix} was not deleted: ${String(err)}\n`));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`join-cost: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
