/**
 * What one held SSE-like connection costs a bare Node server, by the way its request is read:
 * - `http`: Node's HTTP server, the response kept open (a ServerResponse, an IncomingMessage,
 *   the parser and the connection's HTTP state for the connection's life);
 * - `http-release`: the same, the parser given back once the head is out (the service's way
 *   through Node's server: src/http/release-parser.ts's releaseParser);
 * - `door`: the request read off the socket with Node's own parser (llhttp from `_http_common`,
 *   as src/http/request-head.ts) and the response written to the socket: the service's stream
 *   door (src/http/stream-door.ts) without its own work (the headers object, the header checks,
 *   a SocketResponse), so a lower bound for it.
 * - `socketio`: a bare Socket.IO server (the service's socket.io, WebSocket transport only):
 *   each client connects to `/prices` with its subscription in the handshake's auth, as the
 *   client library does, and gets one `price` event; no resume, no hub, no limits. The floor
 *   under a Socket.IO join (src/socketio), measured with the load generator's client.
 * N clients (256 in flight) each send an SSE request and wait for its head and first frames; the
 * server's CPU (process.cpuUsage) and RSS and heap after a GC are taken before and after, per
 * connection. The server runs in a child process; clients and server share the machine.
 *
 *   node bench/dist/bench/conn-cost.js [N=10000] [modes=http,http-release,door] [rounds=1]
 *   node bench/dist/bench/conn-cost.js 5000 socketio
 */
import { fork } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { Server as SocketIoServer } from 'socket.io';
import { releaseParser } from '../src/http/release-parser';
import { openSocketIo, type Conn } from './clients';

const MODES = ['http', 'http-release', 'door', 'socketio'] as const;
type Mode = (typeof MODES)[number];
type Usage = { cpuMs: number; rss: number; heap: number; held: number };

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n';
const FRAMES = `retry: 1000\n\n${'id: 1-0\nevent: price\ndata: {"pair":"BTC-USD","price":97000.12,"timestamp":"2026-12-07T12:00:00.000Z"}\n\n'.repeat(5)}`;
const BODY = `${Buffer.byteLength(FRAMES).toString(16)}\r\n${FRAMES}\r\n`;
const REQUEST = 'GET /api/prices/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nLast-Event-ID: 1-0\r\n\r\n';
const TICK = { id: '1-0', pair: 'BTC-USD', price: 97000.12, timestamp: '2026-12-07T12:00:00.000Z' };
/** A socketio-mode client's request: `/prices`, the subscription in the handshake's auth (the client library's way). */
const SOCKET_IO_REQUEST = { path: '/socket.io/', namespace: '/prices', inHandshake: true, pairs: [TICK.pair], timeField: 'timestamp' };

type Common = {
  HTTPParser: { new (): Record<number, unknown> & { initialize(t: number, r: object, max: number, lenient: number): void; execute(b: Buffer): number | Error }; REQUEST: number; kOnHeadersComplete: number; kOnHeaders: number; kOnBody: number; kOnMessageComplete: number; kOnExecute: number };
};

function serve(mode: Mode): void {
  const common = createRequire(__filename)('_http_common') as Common;
  const held: unknown[] = [];
  const ready = (port: number) => process.send!({ port });
  if (mode === 'socketio') {
    const server = createHttpServer();
    const io = new SocketIoServer(server, { transports: ['websocket'], serveClient: false });
    io.of('/prices').on('connection', (socket) => {
      socket.emit('price', TICK);
      held.push(socket);
    });
    server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  } else if (mode === 'door') {
    const parser = new common.HTTPParser();
    let complete = false;
    parser[common.HTTPParser.kOnHeadersComplete] = () => {
      complete = true;
      return 0;
    };
    for (const k of [common.HTTPParser.kOnHeaders, common.HTTPParser.kOnBody, common.HTTPParser.kOnMessageComplete, common.HTTPParser.kOnExecute]) parser[k] = () => undefined;
    const server = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.once('data', (chunk: Buffer) => {
        complete = false;
        parser.initialize(common.HTTPParser.REQUEST, {}, 16384, 0);
        parser.execute(chunk);
        if (!complete) return void socket.destroy();
        socket.on('data', () => undefined);
        setImmediate(() => {
          socket.cork();
          socket.write(HEAD, 'latin1');
          socket.write(BODY);
          socket.uncork();
          held.push(socket);
        });
      });
    });
    server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  } else {
    const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      setImmediate(() => {
        res.shouldKeepAlive = false;
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.write(FRAMES);
        if (mode === 'http-release' && releaseParser(req, res) !== 'released') throw new Error('the parser was not given back');
        held.push(res);
      });
    });
    server.keepAliveTimeout = 0;
    server.requestTimeout = 0;
    server.headersTimeout = 0;
    server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  }
  process.on('message', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    process.send!({ cpuMs: (cpu.user + cpu.system) / 1000, rss: mem.rss, heap: mem.heapUsed, held: held.length } satisfies Usage);
  });
}

async function measure(mode: Mode, n: number): Promise<Record<string, unknown>> {
  const child = fork(__filename, ['serve', mode], { execArgv: ['--expose-gc'] });
  const next = () => new Promise<{ port: number } & Usage>((resolve) => child.once('message', resolve as (m: unknown) => void));
  const { port } = await next();
  const usage = async () => {
    child.send('usage');
    return next();
  };
  const before = await usage();
  const started = Date.now();
  const sockets: Socket[] = [];
  const conns: Conn[] = [];
  await new Promise<void>((resolve, reject) => {
    let opened = 0;
    let done = 0;
    let inFlight = 0;
    const counted = () => {
      inFlight--;
      if (++done === n) resolve();
      else open();
    };
    const open = () => {
      while (inFlight < 256 && opened < n) {
        opened++;
        inFlight++;
        if (mode === 'socketio') {
          let got = false;
          conns.push(
            openSocketIo({ host: '127.0.0.1', port }, SOCKET_IO_REQUEST, {
              open: () => undefined,
              reset: () => undefined,
              close: (reason) => reject(new Error(`socketio: a connection ended (${reason})`)),
              tick: () => {
                if (got) return;
                got = true;
                counted();
              },
            }),
          );
          continue;
        }
        const socket = connect(port, '127.0.0.1', () => socket.write(REQUEST));
        sockets.push(socket);
        socket.on('error', reject);
        let got = 0;
        let seen = false;
        socket.on('data', (d: Buffer) => {
          got += d.length;
          if (seen || got < HEAD.length + BODY.length - 40) return;
          seen = true;
          counted();
        });
      }
    };
    open();
  });
  const wallMs = Date.now() - started;
  const after = await usage();
  for (const s of sockets) s.destroy();
  for (const c of conns) c.close();
  child.kill();
  if (after.held !== n) throw new Error(`${mode}: ${after.held} of ${n} held`);
  return {
    mode,
    connections: n,
    wallMs,
    cpuPerConnectionUs: Math.round(((after.cpuMs - before.cpuMs) * 1000) / n),
    rssPerConnectionKiB: Number(((after.rss - before.rss) / 1024 / n).toFixed(1)),
    heapPerConnectionKiB: Number(((after.heap - before.heap) / 1024 / n).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10000);
  const modes = (process.argv[3] ?? 'http,http-release,door').split(',') as Mode[];
  const rounds = Number(process.argv[4] ?? 1);
  if (!Number.isInteger(n) || n < 1) throw new Error('N: a whole number of connections');
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (one of ${MODES.join(', ')})`);
  for (let r = 0; r < rounds; r++) for (const mode of modes) process.stdout.write(`${JSON.stringify(await measure(mode, n))}\n`);
}

if (process.argv[2] === 'serve') serve(process.argv[3] as Mode);
else
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`conn-cost: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
