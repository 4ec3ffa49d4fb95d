import http from 'node:http';
import { connect } from 'node:net';
import { waitFor } from './wait';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';
import type { ClientToServerEvents, PairStatus, ResetEvent, ServerToClientEvents, SocketNotice, Tick, WsMessage } from '../../src/shared/wire';
import { SOCKET_NAMESPACE, WS_PATH } from '../../src/shared/wire';

export type PricesClient = Socket<ServerToClientEvents, ClientToServerEvents>;

/** One TCP connection attempt to 127.0.0.1:`port`: 'connected' (then closed), or the error's code (ECONNREFUSED). */
export function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => (c.destroy(), resolve('connected')));
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Resolves when `check` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await waitFor(check, timeoutMs, () => `waiting for ${what}`);
}

/** Lets pending I/O run (e.g. engine.io flushing) between published ticks. */
export const tickOver = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Publishes ever higher prices of a pair, 20 at a time with I/O in between, until `done` holds
 * (e.g. a stalled client was cut off); returns the last tick and how many were sent. Throws after 20 s.
 */
export async function publishUntil(publish: (pair: string, price: number) => Promise<Tick | null>, pair: string, done: () => boolean): Promise<{ last: Tick | null; sent: number }> {
  let sent = 0;
  let last: Tick | null = null;
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > 20_000) throw new Error(`condition not met after ${sent} ticks`);
    for (let i = 0; i < 20; i++) last = await publish(pair, 100_000 + ++sent);
    await tickOver();
  }
  return { last, sent };
}

/** Everything a client got, in order. */
export type Received = { ticks: Tick[]; resets: ResetEvent[]; notices: SocketNotice[]; statuses: PairStatus[] };

/** A socket.io-client on /prices that records what it gets; reconnects fast. Call `close()`. */
export function ioClient(url: string, opts: Partial<ManagerOptions & SocketOptions> = {}): { socket: PricesClient; got: Received; close(): void } {
  const socket: PricesClient = io(`${url}${SOCKET_NAMESPACE}`, {
    transports: ['websocket'],
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    forceNew: true,
    ...opts,
  });
  const got: Received = { ticks: [], resets: [], notices: [], statuses: [] };
  socket.on('price', (t) => got.ticks.push(t));
  socket.on('reset', (r) => got.resets.push(r));
  socket.on('notice', (n) => got.notices.push(n));
  socket.on('status', (s) => got.statuses.push(s));
  return { socket, got, close: () => void socket.disconnect() };
}

export function connected(socket: PricesClient): Promise<void> {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
}

export function connectError(socket: PricesClient): Promise<Error & { data?: { code: string; message: string } }> {
  return new Promise((resolve) => socket.once('connect_error', resolve));
}

/** A `ws` client of /api/ws that records the messages it gets. */
export type WsClient = { ws: WebSocket; messages: WsMessage[]; ticks: () => Tick[]; closed: Promise<{ code: number; reason: string }> };

export function wsClient(port: number, query: string): WsClient {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}?${query}`);
  const messages: WsMessage[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as WsMessage));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on('error', () => undefined);
  return {
    ws,
    messages,
    closed,
    ticks: () =>
      messages
        .filter((m): m is Extract<WsMessage, { type: 'price' }> => m.type === 'price')
        .map(({ type: _type, ...tick }) => tick),
  };
}

export function wsOpen(c: WsClient): Promise<void> {
  if (c.ws.readyState === WebSocket.OPEN) return Promise.resolve();
  return new Promise((resolve, reject) => {
    c.ws.once('open', () => resolve());
    c.ws.once('error', reject);
  });
}

/** The refused handshake's status and JSON body. */
export function wsRefusal(port: number, query: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}?${query}`, { headers });
  return new Promise((resolve, reject) => {
    ws.on('open', () => {
      ws.close();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += String(chunk)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
  });
}

/** A bare engine.io handshake (no namespace joined), as a client that only opens connections sends it. */
export type RawHandshake = { status: number; body: string; close(): Promise<void> };

export async function pollingHandshake(url: string, headers: Record<string, string>): Promise<RawHandshake> {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers });
  const body = await res.text();
  const sid = res.status === 200 ? (JSON.parse(body.slice(1)) as { sid: string }).sid : undefined;
  // A close packet ("1") ends the session at once. On a connection of its own: with WORKERS the
  // front door routes a connection by the session its first request names, and a pooled
  // keep-alive connection may belong to the other worker, which knows no such session.
  const close = async () => {
    if (sid === undefined) return;
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', agent: false, headers: { ...headers, 'Content-Type': 'text/plain;charset=UTF-8' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end('1');
    });
  };
  return { status: res.status, body, close };
}

export function websocketHandshake(port: number, headers: Record<string, string>): Promise<RawHandshake> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { headers });
  ws.on('error', () => undefined);
  const close = () =>
    new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once('close', () => resolve());
      ws.terminate();
    });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ status: 101, body: '', close }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, close }));
    });
    ws.once('close', () => reject(new Error('closed without an answer')));
  });
}
