/**
 * How long a start takes: spawns `node dist/main.js` N times (2 pairs, the simulated source),
 * each until `GET /health/live` answers 200 (asked every 5 ms; a connection made before the app
 * is up waits in the port's queue and is answered once it is), then stops it with SIGINT. Reported:
 * ms from each spawn to its first 200, and the CPU the process had used by then (user + system,
 * from /proc/<pid>/stat in clock ticks: sampleProc; the wall time moves with whatever else the
 * machine does), with their means. The first start is a warm-up (it fills
 * Node's compile cache, and stays up until the bundle's own is written) and is not counted. With `redis` the service uses REDIS_URL (default
 * redis://127.0.0.1:6379) under a key prefix of its own, deleted at the end. `ROOT` points at
 * another checkout's build (to compare two builds alternately with the same script).
 *
 *   node bench/dist/bench/start-time.js [N=8] [memory|redis]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { deletePrefix } from './redis-stats';
import { freePort, sampleProc } from './service';

const root = process.env.ROOT ? path.resolve(process.env.ROOT) : path.resolve(__dirname, '..', '..', '..');
const n = Number(process.argv[2] ?? 8);
const useRedis = (process.argv[3] ?? 'memory') === 'redis';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What the warm-up start stays up for after it answers: the bundle's own code cache is written
 * 5 s after the service listens (src/bundle-loader.ts, CODE_CACHE_WRITE_DELAY_MS).
 */
const WARM_UP_STAYS_MS = 6_000;

/** One start: ms from the spawn to the first 200 of /health/live, and the CPU ms it took; it then stays up `staysMs`. */
async function start(env: Record<string, string>, port: number, staysMs = 0): Promise<{ ms: number; cpuMs: number }> {
  const t0 = performance.now();
  const service = spawn(process.execPath, [path.join(root, 'dist', 'main.js')], { cwd: root, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => service.once('exit', resolve));
  try {
    for (;;) {
      if (performance.now() - t0 > 30_000) throw new Error('the service did not answer /health/live in 30 s');
      if (service.exitCode !== null) throw new Error(`the service exited with ${service.exitCode}`);
      const live = await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.status === 200, () => false);
      if (live) {
        const sample = sampleProc(service.pid!);
        if (!sample) throw new Error('the service answered but its /proc entry could not be read');
        const took = { ms: Math.round(performance.now() - t0), cpuMs: Math.round(sample.cpuMs) };
        if (staysMs > 0) await sleep(staysMs);
        return took;
      }
      await sleep(5);
    }
  } finally {
    service.kill('SIGINT');
    await exited;
  }
}

async function main(): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new Error('N: a whole number of starts');
  const prefix = `start-time-${process.pid}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    HOST: '127.0.0.1',
    PAIRS: 'BTC-USD,ETH-USD',
    PRICE_SOURCES: 'simulated',
    LOG_LEVEL: 'warn',
    ...(useRedis ? { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, LEADER_TTL_MS: '1500' } : {}),
  };
  try {
    await start(env, await freePort('127.0.0.1'), WARM_UP_STAYS_MS);
    const starts: { ms: number; cpuMs: number }[] = [];
    for (let i = 0; i < n; i++) starts.push(await start(env, await freePort('127.0.0.1')));
    const mean = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);
    const ms = starts.map((s) => s.ms);
    const cpu = starts.map((s) => s.cpuMs);
    process.stdout.write(
      `${JSON.stringify({ root, node: process.version, log: useRedis ? 'redis' : 'memory', ...(useRedis ? { prefix } : {}), startsMs: ms, meanMs: mean(ms), cpuMs: cpu, meanCpuMs: mean(cpu) })}\n`,
    );
  } finally {
    if (useRedis) await deletePrefix(redisUrl, prefix);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`start-time: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
