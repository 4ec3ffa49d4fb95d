import { legacyAsset, type ErrorCode, type LegacyTick, type PairStatus, type ResetEvent, type Tick } from '../shared/wire';
import { deltaShape, WireShape } from '../stream/encoded';

/**
 * SSE framing. `price`: `event: price` + `id:` + `data:` (our route); `legacy`: the same with
 * the Bitcoin Price Streamer's `symbol` and `name` in the data (its `/api/price/stream`);
 * `message`: unnamed `id:` + `data:` with those fields too (the legacy `/stream`, read with `onmessage`).
 */
export type FrameKind = 'price' | 'legacy' | 'message';

const legacy = (tick: Tick): LegacyTick => ({ ...tick, ...legacyAsset(tick.pair) });

// JSON.stringify escapes line breaks, so one `data:` line always carries the whole payload.
const serialise: Record<FrameKind, (tick: Tick) => string> = {
  price: (tick) => `event: price\nid: ${tick.id}\ndata: ${JSON.stringify(tick)}\n\n`,
  legacy: (tick) => `event: price\nid: ${tick.id}\ndata: ${JSON.stringify(legacy(tick))}\n\n`,
  message: (tick) => `id: ${tick.id}\ndata: ${JSON.stringify(legacy(tick))}\n\n`,
};

/** A tick's frame as text (the streams send its shape's bytes, `tickShape`, which the stream core keeps). */
export function tickFrame(tick: Tick, kind: FrameKind): string {
  return serialise[kind](tick);
}

/**
 * A frame as the bytes that go on the wire: written straight to the socket of a chunked
 * response, it must be a whole HTTP/1.1 chunk (`<hex length>\r\n<frame>\r\n`); otherwise
 * (HTTP/1.0, or through `res.write`, which adds the chunk framing itself) the bare frame.
 * One allocation either way.
 */
export function frameBytes(frame: string, chunk: boolean): Buffer {
  return Buffer.from(chunk ? `${Buffer.byteLength(frame).toString(16)}\r\n${frame}\r\n` : frame, 'utf8');
}

/**
 * The wire shapes of a tick's frame: its bytes per kind and framing (see frameBytes), built once
 * per tick by the stream core's cache (`encoded`) and shared by every subscriber.
 */
const TICK_SHAPES: Record<FrameKind, readonly [WireShape<Buffer>, WireShape<Buffer>]> = {
  price: [bytesShape('price', false), bytesShape('price', true)],
  legacy: [bytesShape('legacy', false), bytesShape('legacy', true)],
  message: [bytesShape('message', false), bytesShape('message', true)],
};

function bytesShape(kind: FrameKind, chunk: boolean): WireShape<Buffer> {
  return new WireShape(`sse-${kind}${chunk ? '-chunk' : ''}`, (tick) => frameBytes(serialise[kind](tick), chunk));
}

export function tickShape(kind: FrameKind, chunk: boolean): WireShape<Buffer> {
  return TICK_SHAPES[kind][chunk ? 1 : 0];
}

/**
 * A tick as a delta (docs/api.md "Deltas"; `/api/prices/stream?delta=1` only): its own event name
 * `d` (short: it is in every frame), so that a parser that knows only `price` ignores it, the tick's id as every tick's, and the
 * delta array as data. Per framing, built once per tick.
 */
const DELTA_SHAPES = [false, true].map((chunk) =>
  deltaShape(`sse-delta${chunk ? '-chunk' : ''}`, (m) => frameBytes(`event: d\nid: ${m.tick.id}\ndata: ${JSON.stringify(m.delta)}\n\n`, chunk)),
);

export function deltaFrameShape(chunk: boolean): WireShape<Buffer> {
  return DELTA_SHAPES[chunk ? 1 : 0];
}

/** Named in every route: a legacy `onmessage` client must not mistake it for a tick. Carries no id. */
export function resetFrame(reset: ResetEvent): string {
  return `event: reset\ndata: ${JSON.stringify(reset)}\n\n`;
}

/** A pair's stale/fresh status: a named event without an id (not a point to resume from). */
export function statusFrame(status: PairStatus): string {
  return `event: status\ndata: ${JSON.stringify(status)}\n\n`;
}

/** Sent on connect: how long a client waits before reconnecting after the stream drops. */
export function retryFrame(retryMs: number): string {
  return `retry: ${retryMs}\n\n`;
}

/** A comment line: keeps proxies and idle timers from closing a quiet stream. */
export const HEARTBEAT_FRAME = ':\n\n';

/** The last thing a stream gets on shutdown: a reason and a reconnect hint (the client resumes elsewhere). */
export function closingFrame(retryMs: number): string {
  return `: server shutting down, reconnect\nretry: ${retryMs}\n\n`;
}

/**
 * The last thing a stream whose token expired gets: a `notice` event (named, so that an
 * `onmessage` client never takes it for a tick; no id) with the code, then the reconnect hint.
 */
export function expiredFrame(retryMs: number): string {
  return lastNotice('TOKEN_EXPIRED', 'the token has expired; reconnect with a new one and resume', retryMs);
}

/**
 * The last thing a stream gets when its join failed (its resume read from the shared log timed
 * out or failed): a `notice` with INTERNAL_ERROR, then the reconnect hint, so that the client
 * resumes again (from the same id) instead of waiting on a stream that will never start.
 */
export function failedFrame(retryMs: number): string {
  return lastNotice('INTERNAL_ERROR', 'the stream could not start: its history could not be read; reconnect and resume', retryMs);
}

/** A stream's last frames: a `notice` event (no id) with its code and message, then the reconnect hint. */
function lastNotice(code: ErrorCode, message: string, retryMs: number): string {
  return `event: notice\ndata: ${JSON.stringify({ code, message })}\n\nretry: ${retryMs}\n\n`;
}

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};
