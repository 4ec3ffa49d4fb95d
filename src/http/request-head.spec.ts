import { headerObject, readRequestHead } from './request-head';

const head = (text: string) => readRequestHead(Buffer.from(text, 'latin1'), 16 * 1024);
const GET = 'GET /api/prices/stream?pairs=BTC-USD HTTP/1.1\r\nHost: x\r\n';

describe('readRequestHead', () => {
  it('reads a whole plain GET: its target as sent and its headers as Node has them', () => {
    expect(head(`${GET}Last-Event-ID: 1-0\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n`)).toEqual({
      method: 'GET',
      url: '/api/prices/stream?pairs=BTC-USD',
      headers: { host: 'x', 'last-event-id': '1-0', 'x-forwarded-for': '10.0.0.1, 10.0.0.2', authorization: 'Bearer a', cookie: 'a=1; b=2' },
    });
  });

  it('reads one request after another with the same parser', () => {
    expect(head(`${GET}\r\n`)?.url).toBe('/api/prices/stream?pairs=BTC-USD');
    expect(head('GET /x\r\n')).toBeUndefined();
    expect(head('GET /stream HTTP/1.1\r\nHost: y\r\n\r\n')).toEqual({ method: 'GET', url: '/stream', headers: { host: 'y' } });
  });

  it.each([
    ['another method', 'POST /api/prices/stream HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HEAD', 'HEAD /api/prices/stream HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0', 'GET /api/prices/stream HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['no Host', 'GET /api/prices/stream HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['two Hosts', `${GET}Host: y\r\n\r\n`],
    ['a body by length', `${GET}Content-Length: 2\r\n\r\nab`],
    ['an empty body by length', `${GET}Content-Length: 0\r\n\r\n`],
    ['a chunked body', `${GET}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['an upgrade', `${GET}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`],
    ['an Upgrade header alone', `${GET}Upgrade: h2c\r\n\r\n`],
    ['Expect', `${GET}Expect: 100-continue\r\n\r\n`],
    ['a head not yet whole', GET],
    ['a second request behind it', `${GET}\r\nGET /api/prices HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['the start of a second request behind it', `${GET}\r\nGE`],
    ['a bad header name', `${GET}Bad Name: 1\r\n\r\n`],
    ['a bare LF line end', 'GET /api/prices/stream HTTP/1.1\nHost: x\n\n'],
    ['more than 32 headers (read in parts)', `${GET}${Array.from({ length: 40 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n`],
    ['a head over 16 KiB', `${GET}X-Big: ${'a'.repeat(16 * 1024)}\r\n\r\n`],
    ['garbage', '\u0000\u0001\u0002 hello\r\n\r\n'],
  ])('leaves %s to Node', (_, text) => {
    expect(head(text)).toBeUndefined();
    // The parser is fine for the next one.
    expect(head(`${GET}\r\n`)).toBeDefined();
  });
});

describe('readRequestHead and the server\'s largest head', () => {
  it('leaves a head larger than the server takes to Node (its 431)', () => {
    const text = `${GET}X-Pad: ${'a'.repeat(100)}\r\n\r\n`;
    expect(readRequestHead(Buffer.from(text), 64)).toBeUndefined();
    expect(readRequestHead(Buffer.from(text), text.length)).toBeDefined();
  });
});

describe('headerObject', () => {
  it("joins, drops and keeps repeats as Node's message.headers does", () => {
    expect(headerObject(['Host', 'a', 'User-Agent', 'u1', 'user-agent', 'u2', 'Accept', 'x', 'ACCEPT', 'y', 'Set-Cookie', 'c1', 'set-cookie', 'c2'])).toEqual({
      host: 'a',
      'user-agent': 'u1',
      accept: 'x, y',
      'set-cookie': ['c1', 'c2'],
    });
  });

  it('takes a header named __proto__ as any other, on a plain object', () => {
    const headers = headerObject(['Host', 'a', '__proto__', 'v'])!;
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value).toBe('v');
  });
});
