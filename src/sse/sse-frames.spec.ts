import type { Tick } from '../shared/wire';
import { encoded } from '../stream/encoded';
import { HEARTBEAT_FRAME, closingFrame, frameBytes, resetFrame, retryFrame, tickFrame, tickShape, type FrameKind } from './sse-frames';

const tickBytes = (t: Tick, kind: FrameKind, chunk: boolean) => encoded(t, tickShape(kind, chunk));

const tick = (id: string, price = 97000.5): Tick => ({ id, pair: 'BTC-USD', price, timestamp: '2026-11-21T21:00:00.123Z', source: 'simulated' });

describe('SSE frames', () => {
  afterEach(() => jest.restoreAllMocks());

  it('frames a tick as a named price event with its id and JSON data', () => {
    const t = tick('1763758800123-0');
    expect(tickFrame(t, 'price')).toBe(`event: price\nid: 1763758800123-0\ndata: ${JSON.stringify(t)}\n\n`);
  });

  it('frames a tick as an unnamed event with symbol and name for onmessage clients', () => {
    const t = tick('1763758800123-1');
    expect(tickFrame(t, 'message')).toBe(`id: 1763758800123-1\ndata: ${JSON.stringify({ ...t, symbol: 'BTC', name: 'Bitcoin' })}\n\n`);
    expect(tickFrame(t, 'legacy')).toBe(`event: price\nid: 1763758800123-1\ndata: ${JSON.stringify({ ...t, symbol: 'BTC', name: 'Bitcoin' })}\n\n`);
  });

  it('serialises and encodes a tick once per kind and framing however many subscribers ask for it', () => {
    const stringify = jest.spyOn(JSON, 'stringify');
    const t = tick('1763758800123-2');
    const frames = new Set<Buffer>();
    for (let i = 0; i < 1000; i++) for (const kind of ['price', 'legacy', 'message'] as const) for (const chunk of [true, false]) frames.add(tickBytes(t, kind, chunk));
    expect(stringify).toHaveBeenCalledTimes(6);
    expect(frames.size).toBe(6);
    expect(tickBytes(t, 'price', false).toString()).toBe(tickFrame(t, 'price'));
  });

  it('frames bytes as one whole HTTP chunk, its length counted in bytes', () => {
    expect(frameBytes('data: é\n\n', true).toString()).toBe('a\r\ndata: é\n\n\r\n');
    expect(frameBytes('data: é\n\n', false).toString()).toBe('data: é\n\n');
  });

  it('keeps every payload on one data line even when a field holds a line break', () => {
    const t = { ...tick('1-0'), pair: 'BTC-USD\nevent: evil' };
    const lines = tickFrame(t, 'price').split('\n');
    expect(lines.filter((l) => l.startsWith('data: '))).toHaveLength(1);
    expect(lines).not.toContain('event: evil');
  });

  it('frames reset as a named event without an id, and the control frames as the protocol wants', () => {
    expect(resetFrame({ reason: 'history_gap', oldestId: '5-0', oldestTimestamp: null })).toBe(
      'event: reset\ndata: {"reason":"history_gap","oldestId":"5-0","oldestTimestamp":null}\n\n',
    );
    expect(retryFrame(2000)).toBe('retry: 2000\n\n');
    expect(HEARTBEAT_FRAME).toBe(':\n\n');
    expect(closingFrame(1500)).toMatch(/^: .*\nretry: 1500\n\n$/);
  });
});
