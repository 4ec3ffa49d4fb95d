import type { INestApplication } from '@nestjs/common';
import http from 'http';
import type { StreamRequest, StreamResponse } from '../../src/http/socket-response';
import { SseEntry } from '../../src/sse/sse-entry';
import { waitFor } from './wait';

export type SseFrame = { event?: string; id?: string; data?: string; retry?: string; comment?: string };

/** Parses complete SSE blocks (ignores a trailing partial one). */
export function parseFrames(text: string): SseFrame[] {
  const blocks = text.split('\n\n');
  blocks.pop();
  return blocks.map((block) => {
    const frame: SseFrame = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) frame.comment = line.slice(1);
      else {
        const i = line.indexOf(':');
        const field = line.slice(0, i) as 'event' | 'id' | 'data' | 'retry';
        frame[field] = line.slice(i + 1).replace(/^ /, '');
      }
    }
    return frame;
  });
}

export type RawStream = {
  status: number;
  headers: http.IncomingHttpHeaders;
  text(): string;
  frames(): SseFrame[];
  /** Ticks (any event with data) parsed from the frames. */
  ticks(): { id: string; pair: string; price: number; timestamp: string }[];
  /** Resolves once the predicate holds for the text received so far (polls every 10 ms). */
  until(pred: (s: RawStream) => boolean, timeoutMs?: number): Promise<void>;
  ended: Promise<void>;
  close(): void;
};

/** Opens a stream with node's http client and records everything it receives. */
export function openStream(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      const ended = new Promise<void>((done) => {
        res.on('end', done);
        res.on('close', done);
        res.on('error', () => done());
      });
      const stream: RawStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        frames: () => parseFrames(text),
        ticks: () =>
          parseFrames(text)
            .filter((f) => f.data !== undefined && f.event !== 'reset')
            .map((f) => JSON.parse(f.data!) as { id: string; pair: string; price: number; timestamp: string }),
        until: async (pred, timeoutMs = 5000) => void (await waitFor(() => pred(stream), timeoutMs, () => `stream text so far: ${JSON.stringify(text.slice(-500))}`)),
        ended,
        close: () => req.destroy(),
      };
      resolve(stream);
    });
  });
}

/** A plain request whose JSON body is read (for the error answers). */
export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string | undefined; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
  });
}

export { sleep, waitFor } from './wait';

/**
 * The server side of every SSE stream request the app opens from now on, in order, whichever way
 * it came in (read off its connection by the stream door, or through Node's HTTP server): the
 * request and response SseEntry.open was given.
 */
export function tapStreamOpens(app: INestApplication): { req: StreamRequest; res: StreamResponse }[] {
  const entry = app.get(SseEntry);
  const open = entry.open.bind(entry);
  const opened: { req: StreamRequest; res: StreamResponse }[] = [];
  entry.open = (req, res, route) => {
    opened.push({ req, res });
    open(req, res, route);
  };
  return opened;
}
