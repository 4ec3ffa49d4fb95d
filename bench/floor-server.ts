/**
 * The floor: the least a Node.js SSE server can do per subscriber, to measure this machine and
 * this harness against before blaming the service. Every connection gets the SSE headers, then
 * every TICK_MS one write carrying one tick per pair (ids `ms-seq`, a `timestamp` field), as
 * the service sends a poll's ticks. No framework, no validation, no resume, no history.
 *
 *   PORT=18900 THREADS=1 node bench/dist/bench/floor-server.js
 *   npm run bench -- --url http://127.0.0.1:18900 --pid <its pid> --sse 19000 --socketio 0 --ws 0 --published union
 *
 * THREADS=n: n event loops in one process (the main thread and n-1 worker threads) accept on
 * one listening socket, each writing to its own connections: what a second thread would buy.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BroadcastChannel, Worker, isMainThread, workerData } from 'node:worker_threads';

const PORT = Number(process.env.PORT ?? 18900);
const THREADS = Number(process.env.THREADS ?? 1);
const TICK_MS = Number(process.env.TICK_MS ?? 1000);
const PAIRS = (process.env.PAIRS ?? 'BTC-USD,ETH-USD').split(',');

const streams = new Set<ServerResponse>();
const server = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write('retry: 2000\n\n');
  req.socket.setNoDelay(true);
  streams.add(res);
  res.on('close', () => streams.delete(res));
});
const fanOut = (frame: string): void => {
  for (const res of streams) res.write(frame);
};
const ticks = new BroadcastChannel('floor-ticks');
ticks.onmessage = (event) => fanOut((event as { data: string }).data);

if (isMainThread) {
  server.listen({ port: PORT, host: '127.0.0.1', backlog: 4096 }, () => {
    // Worker threads poll the same listening socket from their own event loops.
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    for (let i = 1; i < THREADS; i++) new Worker(__filename, { workerData: { fd } });
    let seq = 0;
    setInterval(() => {
      const now = Date.now();
      let frame = '';
      for (const pair of PAIRS) {
        const tick = { id: `${now}-${seq++}`, pair, price: 50_000 + Math.random() * 1000, timestamp: new Date(now).toISOString(), source: 'simulated' };
        frame += `event: price\nid: ${tick.id}\ndata: ${JSON.stringify(tick)}\n\n`;
      }
      ticks.postMessage(frame);
      fanOut(frame);
    }, TICK_MS);
    process.stdout.write(`floor server on http://127.0.0.1:${(server.address() as AddressInfo).port}, pid ${process.pid}, ${THREADS} thread(s)\n`);
  });
  process.once('SIGTERM', () => process.exit(0));
} else {
  server.listen({ fd: (workerData as { fd: number }).fd });
}
