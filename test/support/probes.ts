import http from 'node:http';
import WebSocket from 'ws';
import type { Tick, Transport } from '../../src/shared/wire';
import { SOCKET_NAMESPACE, SSE_PATH, WS_PATH } from '../../src/shared/wire';
import { parseFrames } from './sse';
import { waitFor } from './wait';

/**
 * A subscriber of any transport that records what it gets and can stop reading (its socket
 * paused: the kernel buffers fill, then the server sees it as slow). Socket.IO is spoken over a
 * raw WebSocket (engine.io framing), since socket.io-client always reads.
 */
export type Probe = {
  readonly transport: Transport;
  /** Ticks in arrival order, with `skipped` when conflated. */
  readonly ticks: Tick[];
  readonly arrivals: number[];
  resets: number;
  closed: boolean;
  pause(): void;
  resume(): void;
  close(): void;
  ids(pair?: string): string[];
};

export type ProbeRequest = { pairs: string[]; lastEventId?: string; conflate?: number };

function base(transport: Transport): Probe {
  const ticks: Tick[] = [];
  return {
    transport,
    ticks,
    arrivals: [],
    resets: 0,
    closed: false,
    pause: () => undefined,
    resume: () => undefined,
    close: () => undefined,
    ids: (pair) => ticks.filter((t) => pair === undefined || t.pair === pair).map((t) => t.id),
  };
}

function query(req: ProbeRequest): string {
  const q = new URLSearchParams({ pairs: req.pairs.join(',') });
  if (req.lastEventId) q.set('lastEventId', req.lastEventId);
  if (req.conflate !== undefined) q.set('conflate', String(req.conflate));
  return q.toString();
}

/** Opens a subscriber and resolves once the server has accepted it (headers, upgrade, or the subscribe ack). */
export async function openProbe(transport: Transport, port: number, req: ProbeRequest): Promise<Probe> {
  if (transport === 'sse') return openSse(port, req);
  if (transport === 'websocket') return openWs(port, req);
  return openSocketIo(port, req);
}

function openSse(port: number, req: ProbeRequest): Promise<Probe> {
  const p = base('sse');
  return new Promise((resolve, reject) => {
    const request = http.get(`http://127.0.0.1:${port}${SSE_PATH}?${query(req)}`, { agent: false });
    request.on('error', reject);
    request.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE status ${res.statusCode}`));
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        const end = text.lastIndexOf('\n\n');
        if (end < 0) return;
        for (const f of parseFrames(text.slice(0, end + 2))) {
          if (f.event === 'price' && f.data) {
            p.ticks.push(JSON.parse(f.data) as Tick);
            p.arrivals.push(Date.now());
          } else if (f.event === 'reset') p.resets++;
        }
        text = text.slice(end + 2);
      });
      res.on('close', () => (p.closed = true));
      resolve(Object.assign(p, { pause: () => void res.pause(), resume: () => void res.resume(), close: () => void request.destroy() }));
    });
  });
}

function openWs(port: number, req: ProbeRequest): Promise<Probe> {
  const p = base('websocket');
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}?${query(req)}`);
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { type: string } & Tick;
    if (m.type === 'price') {
      const { type: _type, ...tick } = m;
      p.ticks.push(tick);
      p.arrivals.push(Date.now());
    } else if (m.type === 'reset') p.resets++;
  });
  ws.on('close', () => (p.closed = true));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(Object.assign(p, { pause: () => ws.pause(), resume: () => ws.resume(), close: () => ws.terminate() })));
    ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
  });
}

function openSocketIo(port: number, req: ProbeRequest): Promise<Probe> {
  const p = base('socketio');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  ws.on('error', () => undefined);
  const event = `42${SOCKET_NAMESPACE},`;
  return new Promise((resolve, reject) => {
    ws.on('message', (data) => {
      const text = String(data);
      if (text === '2') return ws.send('3'); // engine.io ping
      if (text.startsWith('0{')) return ws.send(`40${SOCKET_NAMESPACE},`);
      if (text.startsWith(`40${SOCKET_NAMESPACE},`)) {
        const body = { pairs: req.pairs, ...(req.lastEventId ? { lastEventId: req.lastEventId } : {}), ...(req.conflate !== undefined ? { conflate: req.conflate } : {}) };
        return ws.send(`42${SOCKET_NAMESPACE},0${JSON.stringify(['subscribe', body])}`);
      }
      if (text.startsWith(`43${SOCKET_NAMESPACE},0`)) {
        const [ack] = JSON.parse(text.slice(`43${SOCKET_NAMESPACE},0`.length)) as [{ ok: boolean }];
        if (!ack.ok) return reject(new Error(`subscribe refused: ${text}`));
        return resolve(Object.assign(p, { pause: () => ws.pause(), resume: () => ws.resume(), close: () => ws.terminate() }));
      }
      if (text.startsWith(event)) {
        const [name, payload] = JSON.parse(text.slice(event.length)) as [string, Tick];
        if (name === 'price') {
          p.ticks.push(payload);
          p.arrivals.push(Date.now());
        } else if (name === 'reset') p.resets++;
      }
    });
    ws.on('close', () => (p.closed = true));
  });
}

/** Resolves when the probe has `id` (of any pair). */
export function probeHas(probe: Probe, id: string, timeoutMs = 10_000): Promise<number> {
  return waitFor(() => probe.ticks.some((t) => t.id === id), timeoutMs, () => `${probe.transport} has ${probe.ticks.length} ticks, waiting for ${id}`);
}
