/**
 * Light stream clients for the load generator: SSE on a raw socket, the plain WebSocket feed
 * and Socket.IO spoken directly over `ws` (engine.io v4 framing), plus subscribers that never
 * read. They parse only what the benchmark needs, so that thousands fit in one process.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import WebSocket from 'ws';
import { applyDelta } from '../src/shared/tick-delta';
import { timeOf } from './stats';

/** `localAddress`: the source address each connection binds (the load generator spreads them over 127.0.0.x); unset, the kernel picks one at connect. */
export type Endpoint = { host: string; port: number; localAddress?: string };

export type StreamHandlers = {
  /** The stream is established: SSE 200 headers, WebSocket open, Socket.IO subscribe acknowledged; `servedBy`: SSE's X-Served-By (which worker). */
  open(servedBy?: string): void;
  tick(id: string | undefined, pair: string | undefined, timeMs: number, arrivedMs: number): void;
  reset(): void;
  /** The connection ended (once, and never after `close()`): an errno code, `http_<status>`, `end` or a protocol error. */
  close(reason: string): void;
  /** Bytes the connection's socket received (TCP payload), as they arrive. */
  bytes?(n: number): void;
  /** The server's reconnect hint as it ends the stream (a shutdown): SSE `retry:` after the first, WebSocket 1012 `retry=`, Socket.IO SHUTTING_DOWN `retryMs`. */
  hint?(retryMs: number): void;
};

export type Conn = { close(): void };

export type StreamRequest = {
  /** Path and query, e.g. `/api/prices/stream?pairs=BTC-USD`. */
  path: string;
  lastEventId?: string;
  pairs: string[];
  timeField: string;
  /** --delta: deltas asked for (SSE and WebSocket in `path`, Socket.IO in its subscribe) and applied, as the client library does. */
  delta?: boolean;
};

type Payload = Record<string, unknown>;

/**
 * --delta: the last tick of each pair one connection received, the base of the pair's next delta
 * (docs/api.md "Deltas"). A delta is applied, so the tick counted has its real id and time.
 */
class Bases {
  private readonly last = new Map<string, Payload & { pair: string }>();
  full(p: Payload): void {
    if (typeof p.pair === 'string') this.last.set(p.pair, p as Payload & { pair: string });
  }
  /** The tick, or null when the delta has no base here (the connection then fails: never a wrong tick). */
  apply(id: unknown, delta: unknown): Payload | null {
    if (typeof id !== 'string' || !Array.isArray(delta) || typeof delta[0] !== 'string') return null;
    const base = this.last.get(delta[0]);
    const tick = base === undefined ? null : applyDelta(base, id, delta);
    if (tick !== null) this.last.set(tick.pair, tick);
    return tick;
  }
  clear(): void {
    this.last.clear();
  }
}

function errCode(err: Error & { code?: string }): string {
  return err.code ?? err.message;
}

/** SSE over a raw socket: HTTP/1.1 GET, chunked decoding, incremental `id:`/`event:`/`data:` parsing. */
export function openSse(ep: Endpoint, req: StreamRequest, h: StreamHandlers): Conn {
  const socket = net.connect({ host: ep.host, port: ep.port, localAddress: ep.localAddress });
  socket.setNoDelay(true);
  let done = false;
  let reason: string | undefined;
  let head = '';
  let inBody = false;
  let chunked = false;
  let chunkLeft = 0;
  let afterChunk = false;
  let sizeLine = '';
  const decoder = new StringDecoder('utf8');
  let text = '';
  let evType = '';
  let evData = '';
  let hasData = false;
  let evId: string | undefined;
  let now = 0;
  const bases = new Bases();
  let retries = 0;

  const finish = (why: string): void => {
    if (done) return;
    done = true;
    socket.destroy();
    h.close(why);
  };

  const dispatch = (): void => {
    const type = evType || 'message';
    const data = evData;
    const id = evId;
    evType = '';
    evData = '';
    hasData = false;
    evId = undefined;
    if (type === 'price' || type === 'message') {
      let p: Payload;
      try {
        p = JSON.parse(data) as Payload;
      } catch {
        return finish('bad_json');
      }
      bases.full(p);
      h.tick(id ?? (typeof p.id === 'string' ? p.id : undefined), typeof p.pair === 'string' ? p.pair : undefined, timeOf(p[req.timeField]), now);
    } else if (type === 'd') {
      let t: Payload | null;
      try {
        t = bases.apply(id, JSON.parse(data));
      } catch {
        return finish('bad_json');
      }
      if (t === null) return finish('delta_without_base');
      h.tick(id, t.pair as string, timeOf(t[req.timeField]), now);
    } else if (type === 'reset') {
      bases.clear();
      h.reset();
    }
  };

  const line = (l: string): void => {
    if (l === '') {
      if (hasData) dispatch();
      else evType = '';
      return;
    }
    if (l.charCodeAt(0) === 58) return; // ':' comment (heartbeat)
    const c = l.indexOf(':');
    const name = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? '' : l.slice(c + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (name === 'data') {
      evData = hasData ? `${evData}\n${value}` : value;
      hasData = true;
    } else if (name === 'id') evId = value;
    else if (name === 'event') evType = value;
    else if (name === 'retry' && /^\d+$/.test(value) && ++retries > 1) h.hint?.(Number(value)); // the first is SSE_RETRY_MS, on connect
  };

  const feedText = (s: string): void => {
    text += s;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      line(text.slice(start, end));
      if (done) return;
      start = nl + 1;
    }
    if (start > 0) text = text.slice(start);
  };

  const feedBody = (buf: Buffer): void => {
    if (!chunked) return feedText(decoder.write(buf));
    let i = 0;
    while (i < buf.length && !done) {
      if (chunkLeft > 0) {
        const n = Math.min(chunkLeft, buf.length - i);
        feedText(decoder.write(buf.subarray(i, i + n)));
        i += n;
        chunkLeft -= n;
        if (chunkLeft === 0) afterChunk = true;
        continue;
      }
      const nl = buf.indexOf(10, i);
      if (nl < 0) {
        sizeLine += buf.toString('latin1', i);
        return;
      }
      sizeLine += buf.toString('latin1', i, nl);
      i = nl + 1;
      const l = sizeLine.trim();
      sizeLine = '';
      if (afterChunk) {
        afterChunk = false; // the CRLF that ends a chunk's data
        continue;
      }
      const size = parseInt(l.split(';')[0], 16);
      if (!Number.isFinite(size)) return finish('bad_chunk');
      if (size === 0) return finish('end');
      chunkLeft = size;
    }
  };

  socket.on('connect', () => {
    socket.write(
      `GET ${req.path} HTTP/1.1\r\nHost: ${ep.host}:${ep.port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n` +
        (req.lastEventId !== undefined ? `Last-Event-ID: ${req.lastEventId}\r\n` : '') +
        '\r\n',
    );
  });
  socket.on('data', (buf: Buffer) => {
    now = Date.now();
    h.bytes?.(buf.length);
    if (inBody) return feedBody(buf);
    head += buf.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 65536) finish('bad_head');
      return;
    }
    const status = Number(head.slice(9, 12));
    if (status !== 200) {
      const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(head.slice(end))?.[1];
      return finish(`http_${status}${code ? `_${code}` : ''}`);
    }
    chunked = /\r\ntransfer-encoding:[ \t]*chunked/i.test(head.slice(0, end));
    const servedBy = /\r\nx-served-by:[ \t]*([^\r]*)/i.exec(head.slice(0, end))?.[1];
    const rest = Buffer.from(head.slice(end + 4), 'latin1');
    head = '';
    inBody = true;
    h.open(servedBy);
    if (rest.length > 0) feedBody(rest);
  });
  socket.on('error', (err) => (reason ??= errCode(err)));
  socket.on('close', () => finish(reason ?? (inBody ? 'closed' : 'closed_before_headers')));
  return {
    close: () => {
      done = true;
      socket.destroy();
    },
  };
}

const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 60_000 };

function wsUrl(ep: Endpoint, path: string): string {
  return `ws://${ep.host}:${ep.port}${path}`;
}

/** Connects `ws` and reports its end once, with the most telling reason it saw. */
function openWs(
  ep: Endpoint,
  path: string,
  h: StreamHandlers,
  onOpen: (ws: WebSocket) => void,
  onText: (ws: WebSocket, s: string, now: number, fail: (why: string) => void) => void,
): Conn {
  const ws = new WebSocket(wsUrl(ep, path), { ...WS_OPTIONS, localAddress: ep.localAddress });
  let done = false;
  let reason: string | undefined;
  const fail = (why: string): void => {
    reason ??= why;
    ws.terminate();
  };
  ws.on('unexpected-response', (_req, res) => {
    let body = '';
    res.on('data', (d: Buffer) => (body += d.toString()));
    res.on('end', () => {
      const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(body)?.[1];
      fail(`http_${res.statusCode}${code ? `_${code}` : ''}`);
    });
    res.on('error', () => fail(`http_${res.statusCode}`));
  });
  // The socket under the WebSocket: what it received on the wire since the handshake (frames and
  // control frames included), read from its byte count at each message and at the end. A 'data'
  // listener of our own on that socket lost Socket.IO's first packets.
  let socket: net.Socket | undefined;
  let counted = 0;
  const account = (): void => {
    if (!socket || !h.bytes) return;
    const n = socket.bytesRead;
    if (n > counted) h.bytes(n - counted);
    counted = n;
  };
  ws.on('upgrade', (res) => {
    socket = res.socket;
    counted = socket.bytesRead;
  });
  ws.on('open', () => onOpen(ws));
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    account();
    if (!isBinary) onText(ws, data.toString(), Date.now(), fail);
  });
  ws.on('error', (err) => (reason ??= errCode(err)));
  ws.on('close', (code, why: Buffer) => {
    account();
    if (done) return;
    done = true;
    const hint = code === 1012 ? /retry=(\d+)$/.exec(why.toString()) : null;
    if (hint) h.hint?.(Number(hint[1]));
    h.close(reason ?? `ws_close_${code}`);
  });
  return {
    close: () => {
      done = true;
      ws.terminate();
    },
  };
}

function withQuery(path: string, key: string, value: string | undefined): string {
  if (value === undefined) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}`;
}

/** The plain WebSocket feed: one JSON message per event, `{type:"price", ...tick}`; established once open. */
export function openWsFeed(ep: Endpoint, req: StreamRequest, h: StreamHandlers): Conn {
  const bases = new Bases();
  return openWs(
    ep,
    withQuery(req.path, 'lastEventId', req.lastEventId),
    h,
    () => h.open(),
    (_ws, s, now, fail) => {
      let m: Payload;
      try {
        m = JSON.parse(s) as Payload;
      } catch {
        return fail('bad_json');
      }
      if (Array.isArray(m)) {
        // A delta, `[id, pair, ...values]`: the one message that is an array.
        const [id, ...d] = m as unknown[];
        const t = bases.apply(id, d);
        if (t === null) return fail('delta_without_base');
        return h.tick(id as string, t.pair as string, timeOf(t[req.timeField]), now);
      }
      if (m.type === 'price') {
        bases.full(m);
        h.tick(typeof m.id === 'string' ? m.id : undefined, typeof m.pair === 'string' ? m.pair : undefined, timeOf(m[req.timeField]), now);
      } else if (m.type === 'reset') {
        bases.clear();
        h.reset();
      }
      else if (m.type === 'error') fail(`ws_error_${String(m.code)}`);
    },
  );
}

export type SocketIoRequest = StreamRequest & {
  namespace: string;
  /** The subscription in the handshake's auth (docs/api.md "Auto-resume"): open once the namespace connect is acknowledged. */
  inHandshake?: boolean;
};

/** Splits a Socket.IO packet (after the engine.io `4`): type, ack id and JSON payload. */
function sioPacket(s: string): { type: number; ack: string; json: string } {
  let i = 2;
  if (s.charCodeAt(i) === 47) i = s.indexOf(',', i) + 1; // '/namespace,'
  const ackStart = i;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  return { type: s.charCodeAt(1) - 48, ack: s.slice(ackStart, i), json: s.slice(i) };
}

/**
 * Socket.IO over `ws` without socket.io-client: `40<nsp>,` connects the namespace, a `subscribe`
 * with ack id 0 asks for the pairs (and the resume point), pings `2` are answered `3`. With
 * `inHandshake` the pairs and the resume point go in the connect packet's auth instead, and the
 * stream is open once the connect is acknowledged (the client library's way).
 * `req.path` is the engine.io path, e.g. `/socket.io/`.
 */
export function openSocketIo(ep: Endpoint, req: SocketIoRequest, h: StreamHandlers): Conn {
  const nsp = req.namespace === '/' ? '' : `${req.namespace},`;
  const subscribe: Record<string, unknown> = { pairs: req.pairs };
  if (req.lastEventId !== undefined) subscribe.lastEventId = req.lastEventId;
  if (req.delta) subscribe.delta = true;
  const bases = new Bases();
  return openWs(
    ep,
    withQuery(withQuery(req.path, 'EIO', '4'), 'transport', 'websocket'),
    h,
    () => undefined,
    (ws, s, now, fail) => {
      switch (s.charCodeAt(0)) {
        case 48: // '0' engine.io open
          return ws.send(req.inHandshake ? `40${nsp}${JSON.stringify(subscribe)}` : `40${nsp}`);
        case 50: // '2' ping
          return ws.send('3');
        case 49: // '1' close
          return fail('sio_engine_close');
        case 52: {
          const p = sioPacket(s);
          if (p.type === 2) {
            // event: ["price", tick] or ["reset", {...}]
            if (s.startsWith('["price",', s.length - p.json.length)) {
              const [, t] = JSON.parse(p.json) as [string, Payload];
              bases.full(t);
              h.tick(typeof t.id === 'string' ? t.id : undefined, typeof t.pair === 'string' ? t.pair : undefined, timeOf(t[req.timeField]), now);
            } else if (s.startsWith('["d",', s.length - p.json.length)) {
              const [, id, ...d] = JSON.parse(p.json) as [string, unknown, ...unknown[]];
              const t = bases.apply(id, d);
              if (t === null) return fail('delta_without_base');
              h.tick(id as string, t.pair as string, timeOf(t[req.timeField]), now);
            } else if (s.startsWith('["reset",', s.length - p.json.length)) {
              bases.clear();
              h.reset();
            } else if (s.startsWith('["notice",', s.length - p.json.length)) {
              const [, n] = JSON.parse(p.json) as [string, { code?: string; retryMs?: unknown }];
              if (n.code === 'SHUTTING_DOWN' && typeof n.retryMs === 'number') h.hint?.(n.retryMs);
            }
          } else if (p.type === 0) {
            if (req.inHandshake) h.open();
            else ws.send(`42${nsp}0${JSON.stringify(['subscribe', subscribe])}`);
          } else if (p.type === 3 && p.ack === '0') {
            const [ack] = JSON.parse(p.json) as [{ ok: boolean; error?: { code?: string } }];
            if (ack.ok) h.open();
            else fail(`sio_subscribe_${ack.error?.code ?? 'error'}`);
          } else if (p.type === 4) {
            const msg = /"message"\s*:\s*"([^"]*)"/.exec(p.json)?.[1] ?? '';
            fail(`sio_connect_error${msg ? `_${msg.replace(/\W+/g, '_')}` : ''}`);
          } else if (p.type === 1) fail('sio_disconnect');
        }
      }
    },
  );
}

/** A masked client text frame (RFC 6455), for the never-reading WebSocket subscribers. */
function wsFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]);
  for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, payload]);
}

export type SlowTransport = 'sse' | 'ws' | 'socketio';

export type SlowConn = {
  /** Reads what piled up and reports whether the server had closed the stream. */
  drain(timeoutMs: number): Promise<{ bytes: number; cutByServer: boolean }>;
  close(): void;
  readonly failed: string | undefined;
};

/**
 * A subscriber that sends its request and then never reads: the socket is paused, so once Node's
 * 16 KiB read buffer and the kernel's buffers are full the server's writes back up.
 */
export function openSlow(ep: Endpoint, transport: SlowTransport, req: SocketIoRequest, reads = false): SlowConn {
  const socket = net.connect({ host: ep.host, port: ep.port, localAddress: ep.localAddress });
  let failed: string | undefined;
  let ended = false;
  socket.on('error', (err) => (failed ??= errCode(err)));
  socket.on('end', () => (ended = true));
  socket.on('close', () => (ended = true));
  const host = `Host: ${ep.host}:${ep.port}\r\n`;
  let path = req.path;
  let upgrade = '';
  if (transport === 'sse') upgrade = 'Accept: text/event-stream\r\n';
  else {
    if (transport === 'socketio') path = withQuery(withQuery(req.path, 'EIO', '4'), 'transport', 'websocket');
    upgrade = `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n`;
  }
  socket.on('connect', () => {
    socket.write(`GET ${path} HTTP/1.1\r\n${host}${upgrade}\r\n`);
    if (transport === 'socketio') {
      const nsp = req.namespace === '/' ? '' : `${req.namespace},`;
      // Sent right behind the upgrade: the server reads them once the WebSocket is set up.
      socket.write(wsFrame(`40${nsp}`));
      socket.write(wsFrame(`42${nsp}0${JSON.stringify(['subscribe', { pairs: req.pairs }])}`));
    }
    // The control group (--slow-reads) makes the same requests and reads (and drops) everything.
    if (reads) socket.resume();
    else socket.pause();
  });
  return {
    get failed() {
      return failed;
    },
    drain: (timeoutMs) =>
      new Promise((resolve) => {
        let bytes = 0;
        socket.on('data', (b: Buffer) => (bytes += b.length));
        const finish = (): void => {
          clearTimeout(timer);
          resolve({ bytes, cutByServer: ended || failed !== undefined });
        };
        const timer = setTimeout(finish, timeoutMs);
        socket.once('close', finish);
        socket.resume();
      }),
    close: () => socket.destroy(),
  };
}
