import { SseParser, type SseEvent } from './sse-parser';

function parse(...chunks: string[]): { events: SseEvent[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const chunk of chunks) parser.push(chunk);
  return { events, parser };
}

describe('SseParser', () => {
  it('reads named events with their id and data, and the service retry hint', () => {
    const { events, parser } = parse('retry: 2000\n\nevent: price\nid: 5-0\ndata: {"a":1}\n\n');
    expect(events).toEqual([{ type: 'price', data: '{"a":1}', lastEventId: '5-0' }]);
    expect(parser.retryMs).toBe(2000);
  });

  it('joins multi-line data with line feeds and names an unnamed event message', () => {
    expect(parse('data: one\ndata:two\ndata\n\n').events).toEqual([{ type: 'message', data: 'one\ntwo\n', lastEventId: '' }]);
  });

  it('skips comments (the heartbeat) and does not dispatch an event without data', () => {
    expect(parse(':\n\n: keep-alive\n\nevent: price\n\nid: 1-0\n\n').events).toEqual([]);
  });

  it('reads lines split anywhere across chunks, with CRLF, CR or LF endings', () => {
    const text = 'event: price\r\ndata: {"x":\r\ndata: 1}\r\rdata: b\n\n';
    const whole = parse(text).events;
    expect(whole).toEqual([
      { type: 'price', data: '{"x":\n1}', lastEventId: '' },
      { type: 'message', data: 'b', lastEventId: '' },
    ]);
    for (let i = 1; i < text.length; i += 1) expect(parse(text.slice(0, i), text.slice(i)).events).toEqual(whole);
    expect(parse(...text.split('')).events).toEqual(whole);
  });

  it('keeps the last id across events, ignores an id with NUL and a retry that is not digits, and strips a leading BOM', () => {
    const { events, parser } = parse('\uFEFFid: 1-0\ndata: a\n\nid: 2\0\nretry: 1s\ndata: b\n\n');
    expect(events.map((e) => [e.data, e.lastEventId])).toEqual([
      ['a', '1-0'],
      ['b', '1-0'],
    ]);
    expect(parser.retryMs).toBeNull();
  });

  it('leaves an event without its blank line undispatched (the stream may still be cut there)', () => {
    expect(parse('event: price\ndata: {}\n').events).toEqual([]);
  });
});
