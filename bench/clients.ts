/**
 * Light stream clients for the load generator: SSE on a raw socket, the plain WebSocket feed
 * and Socket.IO spoken directly over a raw WebSocket client (engine.io v4 framing), plus
 * subscribers that never read. They parse only what the benchmark needs, so that thousands fit
 * in one process.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
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

/** Why a stream request was refused: `http_<status>`, with the `code` of the service's JSON error body when it has one. */
function refusal(status: number, body: string): string {
  const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(body)?.[1];
  return `http_${status}${code ? `_${code}` : ''}`;
}

/** The headers of a WebSocket upgrade request after its Host (each line ended, the head not). */
function upgradeHeaders(key: string): string {
  return `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
}

/** An engine.io path opened straight on the WebSocket transport. */
function engineIoWsPath(path: string): string {
  return withQuery(withQuery(path, 'EIO', '4'), 'transport', 'websocket');
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
    if (status !== 200) return finish(refusal(status, head.slice(end)));
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

/** What a server frame may carry at most (the service's are ticks, replays of a few KiB, close reasons). */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** What a refusal's head and body may be at most (the service's are a few hundred bytes). */
const MAX_RESPONSE_BYTES = 64 * 1024;
const HANDSHAKE_TIMEOUT_MS = 60_000;
/** How long a close waits for the server to end the connection once answered (as `ws`' client). */
const CLOSE_TIMEOUT_MS = 30_000;
const HEAD_END = Buffer.from('\r\n\r\n');

/** The WebSocket side of a connection, as the transports' parsers use it. */
export type WsSend = { send(text: string): void };

/**
 * A WebSocket client on a raw socket (RFC 6455), as light as the SSE client: the upgrade request
 * written as one string, the 101 checked (status and `Sec-WebSocket-Accept`), then the server's
 * frames parsed off the socket's chunks (text, fragmented text, ping answered with a pong, close
 * answered with a close); binary frames are skipped. `ws`' client built an HTTP client request,
 * its agent and parser, and a stream per frame reader for each connection: up to twice this
 * one's CPU per connection, more than a bare `ws` server spent serving it (bench/conn-cost.ts
 * reports the clients' CPU). A refusal (any status but 101) ends it as `http_<status>[_<code>]`, the code
 * read from the JSON body. The end is reported once the socket closes, as `ws` did: with an
 * error seen before the 101, else the close frame's code (`ws_close_<code>`, 1006 without one);
 * like `ws`, errors of an open connection (a reset as the server dies) do not replace it.
 * Bytes are counted from the end of the 101's head, frames that came with it included (`ws`'
 * client counted from the chunk after the one that held the 101).
 */
export function openWs(
  ep: Endpoint,
  path: string,
  h: StreamHandlers,
  onOpen: (ws: WsSend) => void,
  onText: (ws: WsSend, s: string, now: number, fail: (why: string) => void) => void,
): Conn {
  const socket = net.connect({ host: ep.host, port: ep.port, localAddress: ep.localAddress });
  let done = false;
  let reason: string | undefined;
  let open = false;
  socket.on('error', (err) => {
    if (!open) reason ??= errCode(err);
  });
  socket.setNoDelay(true);
  socket.setTimeout(HANDSHAKE_TIMEOUT_MS);
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  /** Before the 101: what came of the response so far. */
  let head: Buffer | undefined;
  let closeCode: number | undefined;
  let closeReason = '';
  let closing = false;
  /** A frame split across chunks: the bytes from its start. */
  let partial: Buffer | undefined;
  /** A fragmented text message's parts; `null` while a fragmented binary message is skipped. */
  let fragments: Buffer[] | null | undefined;

  const fail = (why: string): void => {
    reason ??= why;
    socket.destroy();
  };
  const ws: WsSend = {
    send: (text) => {
      if (open && !closing && socket.writable) socket.write(wsFrame(Buffer.from(text)));
    },
  };

  /** The response head, once whole: a 101 opens the connection, any other status is a refusal (read to its body's end). */
  const onHead = (buf: Buffer): void => {
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > MAX_RESPONSE_BYTES) fail('bad_head');
      return;
    }
    const text = buf.toString('latin1', 0, end);
    const status = Number(text.slice(9, 12));
    if (status !== 101) {
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text)?.[1];
      if (length !== undefined && buf.length - end - 4 >= Number(length)) fail(refusal(status, buf.toString('utf8', end + 4, end + 4 + Number(length))));
      else if (buf.length > MAX_RESPONSE_BYTES) fail(refusal(status, ''));
      return;
    }
    if (/\r\nsec-websocket-accept:[ \t]*([^\r]*)/i.exec(text)?.[1].trim() !== accept) return fail('ws_bad_accept');
    head = undefined;
    open = true;
    socket.setTimeout(0);
    onOpen(ws);
    const rest = buf.subarray(end + 4);
    if (rest.length > 0 && !done && reason === undefined) onFrames(rest);
  };

  const onFrames = (chunk: Buffer): void => {
    h.bytes?.(chunk.length);
    const buf = partial === undefined ? chunk : Buffer.concat([partial, chunk]);
    partial = undefined;
    const now = Date.now();
    let i = 0;
    while (reason === undefined && !closing && !done) {
      if (buf.length - i < 2) break;
      const b0 = buf[i];
      const b1 = buf[i + 1];
      if (b1 & 0x80) return fail('ws_masked_frame');
      let len = b1 & 0x7f;
      let at = i + 2;
      if (len === 126) {
        if (buf.length - i < 4) break;
        len = buf.readUInt16BE(i + 2);
        at = i + 4;
      } else if (len === 127) {
        if (buf.length - i < 10) break;
        len = buf.readUInt32BE(i + 2) * 2 ** 32 + buf.readUInt32BE(i + 6);
        at = i + 10;
      }
      if (len > MAX_FRAME_BYTES) return fail('ws_frame_too_big');
      if (buf.length - at < len) break;
      i = at + len;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if (opcode === 1 || opcode === 2 || opcode === 0) {
        if (opcode !== 0) {
          if (fragments !== undefined) return fail('ws_bad_fragment');
          if (fin) {
            if (opcode === 1) onText(ws, buf.toString('utf8', at, i), now, fail);
            continue;
          }
          fragments = opcode === 1 ? [buf.subarray(at, i)] : null;
          continue;
        }
        if (fragments === undefined) return fail('ws_bad_fragment');
        if (fragments !== null) fragments.push(buf.subarray(at, i));
        if (!fin) continue;
        const parts = fragments;
        fragments = undefined;
        if (parts !== null) onText(ws, Buffer.concat(parts).toString('utf8'), now, fail);
      } else if (opcode === 9) {
        socket.write(wsFrame(buf.subarray(at, i), 0x8a));
      } else if (opcode === 8) {
        closeCode = len >= 2 ? buf.readUInt16BE(at) : 1005;
        closeReason = len > 2 ? buf.toString('utf8', at + 2, i) : '';
        closing = true;
        // The close answered with its code, then this side is done; the server closes the connection.
        socket.setTimeout(CLOSE_TIMEOUT_MS);
        socket.end(wsFrame(buf.subarray(at, Math.min(i, at + 2)), 0x88));
      } else if (opcode !== 10) {
        return fail('ws_bad_opcode');
      }
    }
    if (i < buf.length && reason === undefined && !closing && !done) partial = buf.subarray(i);
  };

  socket.on('connect', () => {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${ep.host}:${ep.port}\r\n${upgradeHeaders(key)}\r\n`);
  });
  socket.on('data', (chunk: Buffer) => {
    if (done || reason !== undefined) return;
    if (open) return onFrames(chunk);
    head = head === undefined ? chunk : Buffer.concat([head, chunk]);
    onHead(head);
  });
  socket.on('timeout', () => (closing ? socket.destroy() : fail('ws_handshake_timeout')));
  socket.on('close', () => {
    if (done) return;
    done = true;
    if (reason === undefined && !open && head !== undefined) {
      const end = head.indexOf(HEAD_END);
      // A refusal without a Content-Length, read to the connection's end.
      if (end >= 0) reason = refusal(Number(head.toString('latin1', 9, 12)), head.toString('utf8', end + 4));
    }
    const hint = closeCode === 1012 ? /retry=(\d+)$/.exec(closeReason) : null;
    if (hint) h.hint?.(Number(hint[1]));
    h.close(reason ?? `ws_close_${closeCode ?? 1006}`);
  });
  return {
    close: () => {
      done = true;
      socket.destroy();
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
    engineIoWsPath(req.path),
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

/** A masked client frame (RFC 6455): text unless `first` (FIN and the opcode) says otherwise. */
function wsFrame(payload: Buffer, first = 0x81): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  let head: Buffer;
  if (len < 126) head = Buffer.from([first, 0x80 | len]);
  else if (len < 65536) head = Buffer.from([first, 0x80 | 126, len >> 8, len & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 0x80 | 127;
    head.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    head.writeUInt32BE(len >>> 0, 6);
  }
  const masked = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, masked]);
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
    if (transport === 'socketio') path = engineIoWsPath(req.path);
    upgrade = upgradeHeaders(randomBytes(16).toString('base64'));
  }
  socket.on('connect', () => {
    socket.write(`GET ${path} HTTP/1.1\r\n${host}${upgrade}\r\n`);
    if (transport === 'socketio') {
      const nsp = req.namespace === '/' ? '' : `${req.namespace},`;
      // Sent right behind the upgrade: the server reads them once the WebSocket is set up.
      socket.write(wsFrame(Buffer.from(`40${nsp}`)));
      socket.write(wsFrame(Buffer.from(`42${nsp}0${JSON.stringify(['subscribe', { pairs: req.pairs }])}`)));
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
