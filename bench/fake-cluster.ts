/**
 * A stand-in for the service's cluster mode, to try the harness on a process tree:
 * `npm run bench -- --main bench/dist/bench/fake-cluster.js --env FAKE_WORKERS=2 --env REDIS_URL=...`.
 * The primary forks FAKE_WORKERS (default 2) workers that each run dist/main.js on the one PORT
 * (Node's cluster module: the primary accepts and hands the connections out round robin), worker
 * k with WORKER_INDEX=k, and forks a worker again in the same slot when one dies. The workers are separate instances of the service: with
 * REDIS_URL they share one history and one live stream, so a subscriber resumes on any of them.
 * No `price_stream_worker_subscribers` gauge: each worker's /metrics is its own.
 */
import cluster from 'node:cluster';
import * as path from 'node:path';

if (cluster.isPrimary) {
  const n = Math.max(1, Number(process.env.FAKE_WORKERS ?? 2) || 2);
  let stopping = false;
  const fork = (index: number): void => {
    cluster.fork({ WORKER_INDEX: String(index) }).once('exit', () => {
      if (!stopping) fork(index);
    });
  };
  for (let i = 1; i <= n; i++) fork(i);
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    const done = (): void => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    };
    cluster.on('exit', done);
    done();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  // bench/dist/bench/fake-cluster.js -> dist/main.js
  void import(path.resolve(__dirname, '..', '..', '..', 'dist', 'main.js'));
}
