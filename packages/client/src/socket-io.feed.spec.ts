import { connectRefusal, loadSocketIoClient } from './socket-io.feed';

describe('connectRefusal', () => {
  it('reads the code of a namespace refusal from connect_error data', () => {
    const err = Object.assign(new Error('DOGE-USD is not served here'), { data: { code: 'UNSUPPORTED_PAIR', message: 'DOGE-USD is not served here' } });
    expect(connectRefusal(err)).toEqual({ code: 'UNSUPPORTED_PAIR', status: null, message: 'DOGE-USD is not served here' });
  });

  it("reads the service's code from an engine.io handshake refusal (403 with a JSON body), and nothing from a plain transport error", () => {
    const refused = Object.assign(new Error('xhr poll error'), { description: 403, context: { responseText: '{"code":4,"message":"FORBIDDEN_ORIGIN"}' } });
    expect(connectRefusal(refused)).toMatchObject({ code: 'FORBIDDEN_ORIGIN', status: null });
    expect(connectRefusal(Object.assign(new Error('xhr poll error'), { description: 403, context: { responseText: '{"code":4,"message":"Forbidden"}' } }))).toBeUndefined();
    expect(connectRefusal(Object.assign(new Error('websocket error'), { description: {}, context: {} }))).toBeUndefined();
    expect(connectRefusal(new Error('timeout'))).toBeUndefined();
  });
});

describe('loadSocketIoClient', () => {
  it('loads the module once, and tries again after a failed load', async () => {
    const missing = jest.fn(() => Promise.reject(new Error("Cannot find package 'socket.io-client'")));
    await expect(loadSocketIoClient(missing)).rejects.toThrow('socket.io-client');
    const present = jest.fn(() => import('socket.io-client'));
    const first = await loadSocketIoClient(present);
    expect(await loadSocketIoClient(present)).toBe(first);
    expect(typeof first.io).toBe('function');
    expect(present).toHaveBeenCalledTimes(1);
  });
});
