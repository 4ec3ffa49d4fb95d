/**
 * A stand-in for a service of several worker processes, to try the harness on a process tree
 * with any build: `npm run bench -- --main bench/dist/bench/fake-cluster.js --env FAKE_WORKERS=2
 * --env REDIS_URL=...`. The primary starts FAKE_WORKERS (default 2) plain copies of dist/main.js
 * (child processes, not the cluster module: a build with a cluster mode would take a cluster
 * worker for one of its own), each on a port of its own, listens on PORT and relays each
 * connection to the next copy in turn, and starts a copy again on its port when it dies. The
 * copies are separate instances of the service: with REDIS_URL they share one history and one
 * live stream, so a subscriber resumes on any of them. No `price_stream_worker_subscribers`:
 * each copy's /metrics is its own. Unlike a cluster primary, which hands the socket over, the
 * relay holds two sockets per connection and copies every byte: its CPU and fds are its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);
const n = Math.max(1, Number(process.env.FAKE_WORKERS ?? 2) || 2);
const mainJs = path.resolve(__dirname, '..', '..', '..', 'dist', 'main.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

type Copy = { port: number; child: ChildProcess | null };
const copies: Copy[] = [];
let stopping = false;

function start(copy: Copy): void {
  const child = spawn(process.execPath, [...process.execArgv, mainJs], { env: { ...process.env, PORT: String(copy.port), HOST: host }, stdio: 'inherit' });
  copy.child = child;
  child.once('exit', () => {
    copy.child = null;
    if (!stopping) setTimeout(() => start(copy), 100);
    else if (copies.every((c) => c.child === null)) process.exit(0);
  });
}

async function main(): Promise<void> {
  for (let i = 0; i < n; i++) {
    const copy = { port: await freePort(), child: null };
    copies.push(copy);
    start(copy);
  }
  let next = 0;
  const server = net.createServer((client) => {
    const live = copies.filter((c) => c.child !== null);
    if (live.length === 0) return client.destroy();
    const copy = live[next++ % live.length];
    const upstream = net.connect({ host, port: copy.port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream).pipe(client);
    // A copy that dies takes its connections along, as a dead worker does.
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', cut).once('close', cut);
    upstream.once('error', cut).once('close', cut);
  });
  server.listen(port, host);
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    server.close();
    for (const c of copies) c.child?.kill(signal);
    if (copies.every((c) => c.child === null)) process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
