import { PassThrough } from 'node:stream';
import { clientErrorBody, ownSocket } from './socket-guard';

const overflow = (packet: string) => Object.assign(new Error('Header overflow'), { code: 'HPE_HEADER_OVERFLOW', rawPacket: Buffer.from(packet, 'latin1') });

describe('socket guard', () => {
  it('answers a request line past 8 KiB with 414 URI_TOO_LONG, a header past the limit with 431', () => {
    expect(clientErrorBody(overflow(`GET /${'a'.repeat(65_000)}`))).toMatchObject({ statusCode: 414, code: 'URI_TOO_LONG' });
    // The rest of a line the cluster's router read the start of: no method, no line end.
    expect(clientErrorBody(overflow('a'.repeat(16_000)))).toMatchObject({ statusCode: 414, code: 'URI_TOO_LONG' });
    expect(clientErrorBody(overflow(`GET / HTTP/1.1\r\nCookie: ${'c'.repeat(20_000)}`))).toMatchObject({ statusCode: 431, code: 'HEADERS_TOO_LARGE' });
    expect(clientErrorBody(overflow(`c=${'c'.repeat(100)}\r\nX-More: ${'x'.repeat(20_000)}`))).toMatchObject({ statusCode: 431, code: 'HEADERS_TOO_LARGE' });
  });

  it('gives every parser refusal a stable code', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(clientErrorBody(err('ERR_HTTP_REQUEST_TIMEOUT'))).toMatchObject({ statusCode: 408, code: 'REQUEST_TIMEOUT' });
    expect(clientErrorBody(err('HPE_INVALID_METHOD'))).toMatchObject({ statusCode: 400, code: 'MALFORMED_REQUEST' });
    expect(clientErrorBody(err('HPE_CHUNK_EXTENSIONS_OVERFLOW'))).toMatchObject({ statusCode: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('owns a socket once: an error destroys it instead of going unhandled', () => {
    const socket = new PassThrough();
    ownSocket(socket);
    ownSocket(socket);
    expect(socket.listenerCount('error')).toBe(1);
    // Without a listener, emitting 'error' would throw here.
    socket.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(socket.destroyed).toBe(true);
  });
});
