/** Command-line options of `npm run bench -- [options]`. */
import { parseArgs } from 'node:util';
import { SOCKET_NAMESPACE, SSE_PATH, WS_PATH } from '../src/shared/wire';
import type { SlowTransport } from './clients';

export type BenchOptions = {
  url: string | undefined;
  pid: number | undefined;
  sse: number;
  socketio: number;
  ws: number;
  pairs: string[];
  pairsPerSubscriber: number;
  tickMs: number;
  durationS: number;
  idleS: number;
  settleS: number;
  graceS: number;
  rampTimeoutS: number;
  workers: number;
  addresses: number;
  concurrency: number;
  connectRate: number | null;
  churn: { minMs: number; maxMs: number } | null;
  reconnectDelayMs: number;
  ignoreHints: boolean;
  /** How many nice levels below the harness the load generator's workers run (`nice -n`; 0: the harness's and the service's own priority). */
  generatorNice: number;
  connectTimeoutMs: number;
  /** Seconds into the load phase at which one worker process of the service gets SIGKILL; null: none. */
  killWorkerAtS: number | null;
  /**
   * --storm: what ends every stream at once, `stormAtS` seconds into the load phase. `sigkill`: the
   * (one-process) service gets SIGKILL and the harness, as its supervisor, starts it again on the
   * same port; `sigterm`: SIGTERM (with SHUTDOWN_DELAY_MS, if given), then the same restart once it
   * exited; `worker`: --kill-worker-at against WORKERS=2; `rolling` (--instances N >= 2): SIGTERM
   * to instance 1 only, its subscribers reconnect to the other instances (round-robin), and the
   * harness starts instance 1 again on its port once it exited. Null: no storm.
   */
  storm: StormTrigger | null;
  stormAtS: number | null;
  /**
   * --hold-port: the port's sockets are made by the harness and held by a supervisor process that
   * starts the service on them (systemd's socket activation, LISTEN_FDS), and again after a storm's
   * signal: what connects while no service runs waits in their queues instead of being refused.
   */
  holdPort: boolean;
  /** --rest: routes driven with wrk during the load phase (beside the streams, if any); null: none. */
  rest: { routes: string[]; connections: number; threads: number; durationS: number; warmupS: number } | null;
  slow: number;
  slowTransport: SlowTransport;
  slowReads: boolean;
  ssePath: string;
  wsPath: string;
  socketIoPath: string;
  socketIoNamespace: string;
  timeField: string;
  /** --delta: subscribers ask for per-pair deltas (docs/api.md "Deltas") and apply them. */
  delta: boolean;
  /** --sio-auth: Socket.IO subscribers subscribe in the handshake's `auth`, as the client library does. */
  sioAuth: boolean;
  published: 'history' | 'union' | 'none';
  env: Record<string, string>;
  /** Services started (each `node dist/main.js` on its own port, the same environment); the subscribers are spread over them. */
  instances: number;
  /** Sample Redis (`INFO`) over the measured window: CPU, commands and bytes out per published tick. */
  redisStats: boolean;
  nodeArgs: string[];
  assert: boolean;
  out: string | undefined;
  label: string;
};

export type StormTrigger = 'sigkill' | 'sigterm' | 'worker' | 'rolling';
export const STORM_TRIGGERS: StormTrigger[] = ['sigkill', 'sigterm', 'worker', 'rolling'];
/** The storms in which the harness signals a service it started and starts it again on its port. */
export const RESTARTING_STORMS: StormTrigger[] = ['sigkill', 'sigterm', 'rolling'];
/** --rest without a list: the latest-price routes of issue 26 (the pairs given are the configured ones). */
export const DEFAULT_REST_ROUTES = ['/api/prices/BTC-USD', '/api/price/current', '/api/prices?pairs=BTC-USD,ETH-USD', '/api/v1/ltp'];

export const USAGE = `npm run bench -- [options]

Load:
  --sse N --socketio N --ws N   subscribers per transport (default 100 each)
  --pairs N | --pair-list A,B   pairs: N generated (BTC-USD, ETH-USD, SOL-USD, ...; default 2) or a list
  --pairs-per-sub N             pairs each subscriber asks for (default: all)
  --tick-ms MS                  POLL_INTERVAL_MS of the simulated source: one tick per pair per poll (default 1000)
  --duration S                  measured seconds (default 30; twice that with --slow: before and after)
  --workers N                   load-generating processes (default: one per 4,000 subscribers)
  --addresses N                 source addresses 127.0.0.1..127.0.0.N (default 16)
  --concurrency N               connection attempts in flight during the ramp, all workers (default 256)
  --connect-rate N              instead: start N connection attempts per second, all workers, whether or not the
                                earlier ones are established (clients arriving on their own; an open loop)
  --connect-timeout S           an attempt not established by then fails as "timeout" (default 30)
Resume and slow readers:
  --churn                       cut every connection at a random moment every 5-15 s; it resumes from its last id
  --churn-min S --churn-max S   the cut interval (default 5 and 15)
  --reconnect-delay-ms MS       wait before reconnecting after the server dropped a stream (default 250, jittered); a stream
                                the server ended with a reconnect hint (shutdown: SSE retry:, WebSocket 1012 retry=,
                                Socket.IO notice retryMs) waits that long instead, unless --ignore-hints
  --generator-nice N            run the load generator's workers N nice levels below the harness (0-19, default 0: the
                                service's own priority; under "nice -n N"): the service first for the CPU, as with its
                                clients on other machines. The generator then stamps drops late, which the storm's figures
                                from the signal do not rest on; its late reconnects and reads are in every figure
  --kill-worker-at S            S seconds into the load phase, SIGKILL one worker process of the service (a child of
                                its pid, the lowest worker slot); the dropped subscribers reconnect and resume
Reconnect storm (a process's streams end at once; reported per dropped subscriber: drop to re-established, to whole):
  --storm T                     sigkill: SIGKILL the service (one process) and start it again on the same port, as a
                                supervisor would; sigterm: SIGTERM it (give --env SHUTDOWN_DELAY_MS=...), start it again
                                once it exited; worker: SIGKILL one worker of WORKERS=2 (--kill-worker-at; WORKERS=2 is
                                set unless --env WORKERS is given); rolling (with --instances N >= 2): a rolling
                                deploy's step, SIGTERM to instance 1 only (give --env SHUTDOWN_DELAY_MS=...); its
                                subscribers, once their streams end, reconnect to the other instances (round-robin
                                by subscriber, as a load balancer that took instance 1 out) and stay there; instance
                                1 is started again on its port once it exited. sigkill, sigterm and rolling need
                                --env REDIS_URL=... (the history must outlive the process, or every resume is a
                                reset) and no --url
  --storm-at S                  seconds into the load phase (default a third of --duration)
  --hold-port                   the harness makes the port's 8 listening sockets and a supervisor process holds them
                                and starts the service on them (systemd's socket activation: LISTEN_FDS, LISTEN_PID),
                                the first time and after a sigkill or sigterm storm: what connects while no service
                                runs waits in their queues instead of being refused. One instance, one process
                                "whole": every tick of its pairs published up to its reconnect that it lacked at the
                                drop has arrived, and it has no duplicate; checked against the published history
  --slow N                      N more subscribers that never read (measured in a second phase)
  --slow-transport T            sse (default), ws or socketio
  --slow-reads                  control run: the same extra subscribers (all pairs), but reading
REST (wrk must be on PATH; beside --sse/--socketio/--ws streams if any, else alone: --sse 0 --socketio 0 --ws 0):
  --rest                        drive each REST route with wrk in turn during the load phase; reported per route:
                                req/s, p50, p90, p99, max, non-2xx and socket errors. The load phase lasts at least as
                                long as the routes take
  --rest-routes A,B             the routes (paths, comma-separated; default ${DEFAULT_REST_ROUTES.join(',')})
  --rest-connections N          wrk connections (default 100)
  --rest-threads N              wrk threads (default 2)
  --rest-duration S             measured seconds per route (default 10), after --rest-warmup S (default 2)
Target:
  --url URL                     measure a running server instead of starting dist/main.js
  --pid PID                     with --url: the process to read CPU and memory from
  --sse-path P --ws-path P      default ${SSE_PATH} and ${WS_PATH}
  --sio-path P --sio-namespace N default /socket.io/ and ${SOCKET_NAMESPACE}
  --time-field F                the payload's time field (default timestamp)
  --delta                       subscribers ask for per-pair deltas (delta=1) and apply them; the delivery check
                                and latencies use the rebuilt ticks
  --sio-auth                    Socket.IO subscribers send their pairs and resume point in the handshake's auth (one
                                round trip: the namespace connect), as the client library does, instead of a
                                subscribe event after it (two: connect, then subscribe and its ack)
  --published history|union|none  what was published: the history API (default), the union of what
                                the subscribers got (servers without one), or no delivery check
  --env K=V                     more environment for the started service (repeatable)
  --instances N                 start N services (default 1), each on its own port with the same environment, and
                                spread the subscribers evenly over them (whole load-generating workers per
                                instance); more than one needs --env REDIS_URL=... (one shared stream). Reported
                                per instance: delivered, p99, CPU, RSS, whether it led (price_stream_leader) and its
                                open streams at the end (price_stream_subscribers)
  --redis-stats                 with --env REDIS_URL=...: read Redis' INFO (cpu, stats, commandstats, clients) at
                                the start and end of the measured window; report its CPU, commands and bytes sent
                                per published tick. Redis may serve other clients too: their share is in the deltas.
                                With --env REDIS_PREFIX=P the keys P:* are deleted before and after the run
  --node-args="ARGS"            node flags for the started service, e.g. --node-args="--cpu-prof --cpu-prof-dir=bench/results"
Output:
  --assert                      exit 1 unless every subscriber connected and got every tick once, in order
  --out FILE                    JSON result (default bench/results/<time>-<label>.json)
  --label NAME                  names the run in the table and the file
  --idle S --settle S --grace S --ramp-timeout S  waits around the measurement (3, 2, auto, 180)
`;

const BASES = ['BTC', 'ETH', 'SOL', 'XRP', 'ADA', 'DOGE', 'DOT', 'AVAX', 'LINK', 'LTC', 'BCH', 'ATOM', 'XLM', 'UNI', 'ETC', 'FIL', 'AAVE', 'ALGO', 'NEAR', 'XTZ'];
const QUOTES = ['USD', 'EUR', 'GBP', 'USDT', 'JPY'];

/** BTC-USD, ETH-USD, SOL-USD, ... then the same bases against EUR, GBP, ... */
export function generatePairs(n: number): string[] {
  if (n > BASES.length * QUOTES.length) throw new Error(`at most ${BASES.length * QUOTES.length} generated pairs`);
  return Array.from({ length: n }, (_, i) => `${BASES[i % BASES.length]}-${QUOTES[Math.floor(i / BASES.length)]}`);
}

function int(name: string, raw: string | undefined, dflt: number, min = 0): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got "${raw}"`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      url: { type: 'string' },
      pid: { type: 'string' },
      sse: { type: 'string' },
      socketio: { type: 'string' },
      ws: { type: 'string' },
      pairs: { type: 'string' },
      'pair-list': { type: 'string' },
      'pairs-per-sub': { type: 'string' },
      'tick-ms': { type: 'string' },
      duration: { type: 'string' },
      idle: { type: 'string' },
      settle: { type: 'string' },
      grace: { type: 'string' },
      'ramp-timeout': { type: 'string' },
      workers: { type: 'string' },
      addresses: { type: 'string' },
      concurrency: { type: 'string' },
      'connect-rate': { type: 'string' },
      churn: { type: 'boolean' },
      'churn-min': { type: 'string' },
      'churn-max': { type: 'string' },
      'reconnect-delay-ms': { type: 'string' },
      'ignore-hints': { type: 'boolean' },
      'generator-nice': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'kill-worker-at': { type: 'string' },
      storm: { type: 'string' },
      'storm-at': { type: 'string' },
      'hold-port': { type: 'boolean' },
      rest: { type: 'boolean' },
      'rest-routes': { type: 'string' },
      'rest-connections': { type: 'string' },
      'rest-threads': { type: 'string' },
      'rest-duration': { type: 'string' },
      'rest-warmup': { type: 'string' },
      slow: { type: 'string' },
      'slow-transport': { type: 'string' },
      'slow-reads': { type: 'boolean' },
      'sse-path': { type: 'string' },
      'ws-path': { type: 'string' },
      'sio-path': { type: 'string' },
      'sio-namespace': { type: 'string' },
      'time-field': { type: 'string' },
      delta: { type: 'boolean' },
      'sio-auth': { type: 'boolean' },
      published: { type: 'string' },
      env: { type: 'string', multiple: true },
      instances: { type: 'string' },
      'redis-stats': { type: 'boolean' },
      'node-args': { type: 'string' },
      assert: { type: 'boolean' },
      out: { type: 'string' },
      label: { type: 'string' },
    },
  });
  if (v.help) return 'help';
  const sse = int('sse', v.sse, 100);
  const socketio = int('socketio', v.socketio, 100);
  const ws = int('ws', v.ws, 100);
  const pairs = v['pair-list'] ? v['pair-list'].split(',').map((s) => s.trim()).filter(Boolean) : generatePairs(int('pairs', v.pairs, 2, 1));
  const tickMs = int('tick-ms', v['tick-ms'], 1000, 100);
  const slowTransport = (v['slow-transport'] ?? 'sse') as SlowTransport;
  if (!['sse', 'ws', 'socketio'].includes(slowTransport)) throw new Error('--slow-transport: sse, ws or socketio');
  const published = (v.published ?? 'history') as BenchOptions['published'];
  if (!['history', 'union', 'none'].includes(published)) throw new Error('--published: history, union or none');
  const env: Record<string, string> = {};
  for (const kv of v.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--env: expected KEY=VALUE, got "${kv}"`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const churnMin = int('churn-min', v['churn-min'], 5, 0.1);
  const churnMax = int('churn-max', v['churn-max'], 15, churnMin);
  const addresses = int('addresses', v.addresses, 16, 1);
  if (addresses > 254) throw new Error('--addresses: at most 254 (127.0.0.1..127.0.0.254)');
  const total = sse + socketio + ws;
  const durationS = int('duration', v.duration, 30, 1);
  const storm = (v.storm ?? null) as StormTrigger | null;
  if (storm !== null && !STORM_TRIGGERS.includes(storm)) throw new Error(`--storm: ${STORM_TRIGGERS.join(', ')}`);
  const stormAtS = storm === null ? null : int('storm-at', v['storm-at'], Math.max(1, Math.floor(durationS / 3)));
  if (storm !== null && v['kill-worker-at'] !== undefined) throw new Error('--storm worker replaces --kill-worker-at: give one of them');
  const restarting = storm !== null && RESTARTING_STORMS.includes(storm);
  if (restarting && v.url !== undefined) throw new Error(`--storm ${storm}: the harness restarts the service it started (not with --url)`);
  if (restarting && !env.REDIS_URL) throw new Error(`--storm ${storm} needs --env REDIS_URL=...: without Redis the history dies with the process and every resume is a reset`);
  if (storm === 'sigkill' && Number(env.WORKERS ?? 1) > 1) throw new Error('--storm sigkill: one process (a primary killed with SIGKILL leaves its workers behind); use --storm worker for WORKERS > 1');
  if (storm === 'worker' && env.WORKERS === undefined && v.url === undefined) env.WORKERS = '2';
  const killWorkerAtS = storm === 'worker' ? stormAtS : v['kill-worker-at'] === undefined ? null : int('kill-worker-at', v['kill-worker-at'], 0);
  if (stormAtS !== null && stormAtS >= durationS) throw new Error(`--storm-at: must lie within the load phase (--duration ${durationS})`);
  if (v['rest-routes'] !== undefined && !v.rest) throw new Error('--rest-routes: with --rest');
  const restRoutes = !v.rest ? null : v['rest-routes'] === undefined ? DEFAULT_REST_ROUTES : v['rest-routes'].split(',').map((r) => r.trim()).filter(Boolean);
  // `?pairs=A,B` holds a comma: a list item that does not start with "/" continues the one before.
  const routes = restRoutes?.reduce<string[]>((a, r) => (r.startsWith('/') || a.length === 0 ? [...a, r] : [...a.slice(0, -1), `${a[a.length - 1]},${r}`]), []) ?? null;
  if (killWorkerAtS !== null && killWorkerAtS >= durationS) throw new Error(`--kill-worker-at: must lie within the load phase (--duration ${durationS})`);
  if (killWorkerAtS !== null && v.url !== undefined && v.pid === undefined) throw new Error('--kill-worker-at with --url needs --pid: the service process whose child to kill');
  const instances = int('instances', v.instances, 1, 1);
  if (!Number.isInteger(instances)) throw new Error('--instances: a whole number');
  if (instances > 1 && v.url !== undefined) throw new Error('--instances: the harness starts the instances itself (not with --url)');
  if (instances > 1 && !env.REDIS_URL) throw new Error('--instances > 1 needs --env REDIS_URL=...: instances without Redis publish separate streams');
  if (instances > 1 && killWorkerAtS !== null) throw new Error('--kill-worker-at: one instance only');
  if (instances > 1 && storm !== null && storm !== 'rolling') throw new Error(`--storm ${storm}: one instance only (--storm rolling terminates one of several)`);
  const holdPort = v['hold-port'] ?? false;
  if (holdPort && (v.url !== undefined || instances > 1 || Number(env.WORKERS ?? 1) > 1 || (storm !== null && storm !== 'sigkill' && storm !== 'sigterm'))) {
    throw new Error('--hold-port: the harness starts one instance of one process (no --url, --instances, WORKERS > 1), with no storm or --storm sigkill|sigterm');
  }
  const nice = v['generator-nice'];
  if (nice !== undefined && !/^(1?[0-9])$/.test(nice)) throw new Error(`--generator-nice: expected a whole number from 0 to 19, got "${nice}"`);
  const generatorNice = nice === undefined ? 0 : Number(nice);
  if (storm === 'rolling' && instances < 2) throw new Error('--storm rolling needs --instances N >= 2: the subscribers of the terminated instance reconnect to the others');
  if (v['redis-stats'] && !env.REDIS_URL) throw new Error('--redis-stats needs --env REDIS_URL=...');
  return {
    url: v.url?.replace(/\/+$/, ''),
    pid: v.pid === undefined ? undefined : int('pid', v.pid, 0, 1),
    sse,
    socketio,
    ws,
    pairs,
    pairsPerSubscriber: int('pairs-per-sub', v['pairs-per-sub'], pairs.length, 1),
    tickMs,
    durationS,
    idleS: int('idle', v.idle, 3),
    settleS: int('settle', v.settle, 2),
    graceS: int('grace', v.grace, Math.max(3, (2 * tickMs) / 1000 + 1)),
    rampTimeoutS: int('ramp-timeout', v['ramp-timeout'], 180, 1),
    workers: int('workers', v.workers, Math.max(1, Math.ceil((total + int('slow', v.slow, 0)) / 4000)), 1),
    addresses,
    concurrency: int('concurrency', v.concurrency, 256, 1),
    connectRate: v['connect-rate'] === undefined ? null : int('connect-rate', v['connect-rate'], 0, 1),
    churn: v.churn ? { minMs: churnMin * 1000, maxMs: churnMax * 1000 } : null,
    reconnectDelayMs: int('reconnect-delay-ms', v['reconnect-delay-ms'], 250),
    ignoreHints: v['ignore-hints'] === true,
    generatorNice,
    connectTimeoutMs: int('connect-timeout', v['connect-timeout'], 30, 1) * 1000,
    killWorkerAtS,
    storm,
    stormAtS,
    holdPort,
    rest: routes
      ? {
          routes,
          connections: int('rest-connections', v['rest-connections'], 100, 1),
          threads: int('rest-threads', v['rest-threads'], 2, 1),
          durationS: int('rest-duration', v['rest-duration'], 10, 1),
          warmupS: int('rest-warmup', v['rest-warmup'], 2),
        }
      : null,
    slow: int('slow', v.slow, 0),
    slowTransport,
    slowReads: v['slow-reads'] ?? false,
    ssePath: v['sse-path'] ?? SSE_PATH,
    wsPath: v['ws-path'] ?? WS_PATH,
    socketIoPath: v['sio-path'] ?? '/socket.io/',
    socketIoNamespace: v['sio-namespace'] ?? SOCKET_NAMESPACE,
    timeField: v['time-field'] ?? 'timestamp',
    delta: v.delta ?? false,
    sioAuth: v['sio-auth'] ?? false,
    published,
    env,
    instances,
    redisStats: v['redis-stats'] ?? false,
    nodeArgs: v['node-args'] ? v['node-args'].split(/\s+/).filter(Boolean) : [],
    assert: v.assert ?? false,
    out: v.out,
    label: v.label ?? `${storm ? `storm-${storm}` : routes ? 'rest' : v.churn ? 'churn' : 'load'}-${sse}sse-${socketio}sio-${ws}ws${v.slow ? `-${v.slow}slow` : ''}${killWorkerAtS !== null ? '-kill' : ''}${instances > 1 ? `-${instances}inst` : ''}${holdPort ? '-held' : ''}${generatorNice > 0 ? `-nice${generatorNice}` : ''}`,
  };
}
