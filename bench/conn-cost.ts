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
 * - `ws`: a bare `ws` server (as the service's WebSocket feed configures it), each client given
 *   one `price` message: the floor under a plain WebSocket join (src/ws).
 * - `socketio-ws`: the same `ws` server speaking the Socket.IO protocol itself (engine.io 4's open
 *   packet, the namespace's connect acknowledged with a socket id, one `price` event), to the same
 *   client as `socketio`: no engine.io, no socket.io. The floor under a Socket.IO path of the
 *   service's own (none exists: this measures what one could save).
 * In `ws` and `socketio-ws` the 101 leaves with the first message, and a connect's acknowledgement
 * with its event, in one write each (the socket corked for the turn, as the service does).
 * N clients (256 in flight) each send an SSE request and wait for its head and first frames; the
 * server's CPU (process.cpuUsage) and RSS and heap after a GC are taken before and after, per
 * connection. The server runs in a child process; clients and server share the machine. The
 * clients' own CPU (this process, from the first connection to the last answered) is reported per
 * connection too: a load generator's share of a storm of such joins.
 *
 *   node bench/dist/bench/conn-cost.js [N=10000] [modes=http,http-release,door] [rounds=1]
 *   node bench/dist/bench/conn-cost.js 5000 socketio
 *   node bench/dist/bench/conn-cost.js 5000 ws,socketio-ws
 */
import { fork } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer, type WebSocket } from 'ws';
import { releaseParser } from '../src/http/release-parser';
import { openSocketIo, openWsFeed, type Conn } from './clients';

const MODES = ['http', 'http-release', 'door', 'socketio', 'ws', 'socketio-ws'] as const;
type Mode = (typeof MODES)[number];
type Usage = { cpuMs: number; rss: number; heap: number; held: number };

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n';
const FRAMES = `retry: 1000\n\n${'id: 1-0\nevent: price\ndata: {"pair":"BTC-USD","price":97000.12,"timestamp":"2026-12-07T12:00:00.000Z"}\n\n'.repeat(5)}`;
const BODY = `${Buffer.byteLength(FRAMES).toString(16)}\r\n${FRAMES}\r\n`;
const REQUEST = 'GET /api/prices/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nLast-Event-ID: 1-0\r\n\r\n';
const TICK = { id: '1-0', pair: 'BTC-USD', price: 97000.12, timestamp: '2026-12-07T12:00:00.000Z' };
/** A socketio-mode client's request: `/prices`, the subscription in the handshake's auth (the client library's way). */
const SOCKET_IO_REQUEST = { path: '/socket.io/', namespace: '/prices', inHandshake: true, pairs: [TICK.pair], timeField: 'timestamp' };
const WS_REQUEST = { path: '/api/prices/ws', pairs: [TICK.pair], timeField: 'timestamp' };
/** engine.io 4's open packet as socket.io 4 sends it for a WebSocket-only server (its defaults). */
const openPacket = (sid: string) => `0${JSON.stringify({ sid, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1e6 })}`;
const NSP_CONNECT = '40/prices,';

/**
 * socketio-ws: one connection's side of the Socket.IO protocol on a `ws` socket: the open packet;
 * then a connect to /prices (its auth parsed, as a handshake's would be) is acknowledged with a
 * socket id and one `price` event follows. Ids are 15 random bytes, as engine.io's and socket.io's.
 */
function speakSocketIo(ws: WebSocket, socket: Socket, held: unknown[]): void {
  ws.send(openPacket(randomBytes(15).toString('base64url')));
  ws.once('message', (data: Buffer) => {
    const s = data.toString();
    if (!s.startsWith(NSP_CONNECT)) return ws.terminate();
    const auth: unknown = s.length > NSP_CONNECT.length ? JSON.parse(s.slice(NSP_CONNECT.length)) : {};
    if (typeof auth !== 'object' || auth === null) return ws.terminate();
    // The acknowledgement and the event in one write, as the service's catch-up leaves.
    socket.cork();
    ws.send(`${NSP_CONNECT}{"sid":"${randomBytes(15).toString('base64url')}"}`);
    ws.send(`42/prices,${JSON.stringify(['price', TICK])}`);
    process.nextTick(() => socket.uncork());
    held.push(ws);
  });
}

type Common = {
  HTTPParser: { new (): Record<number, unknown> & { initialize(t: number, r: object, max: number, lenient: number): void; execute(b: Buffer): number | Error }; REQUEST: number; kOnHeadersComplete: number; kOnHeaders: number; kOnBody: number; kOnMessageComplete: number; kOnExecute: number };
};

function serve(mode: Mode): void {
  const common = createRequire(__filename)('_http_common') as Common;
  const held: unknown[] = [];
  const ready = (port: number) => process.send!({ port });
  if (mode === 'ws' || mode === 'socketio-ws') {
    const server = createHttpServer();
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 16 * 1024 });
    const price = JSON.stringify({ type: 'price', ...TICK });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      // The 101 and the first message in one write, as the service's WebSocket feed corks them.
      socket.cork();
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => ws.terminate());
        if (mode === 'socketio-ws') speakSocketIo(ws, socket, held);
        else {
          ws.send(price);
          held.push(ws);
        }
        process.nextTick(() => socket.uncork());
      });
    });
    server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  } else if (mode === 'socketio') {
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
  const clientCpu = process.cpuUsage();
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
        if (mode === 'socketio' || mode === 'socketio-ws' || mode === 'ws') {
          let got = false;
          const ep = { host: '127.0.0.1', port };
          const handlers = {
            open: () => undefined,
            reset: () => undefined,
            close: (reason: string) => reject(new Error(`${mode}: a connection ended (${reason})`)),
            tick: () => {
              if (got) return;
              got = true;
              counted();
            },
          };
          conns.push(mode === 'ws' ? openWsFeed(ep, WS_REQUEST, handlers) : openSocketIo(ep, SOCKET_IO_REQUEST, handlers));
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
  const clientUsage = process.cpuUsage(clientCpu);
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
    clientCpuPerConnectionUs: Math.round((clientUsage.user + clientUsage.system) / n),
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
