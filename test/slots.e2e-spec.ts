import http from 'node:http';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { ConnectionRegistry } from '../src/stream/connection-registry';
import { SlotBroker, type SlotRefusal } from '../src/stream/slots';
import { SOCKET_NAMESPACE, SSE_PATH, WS_PATH } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { waitFor } from './support/wait';

/**
 * A stream's slot is a promise (with workers the primary answers it over IPC). A client that
 * leaves while its slot is on the way must leave nothing behind: no slot, no subscriber.
 */
describe('a client that leaves while its stream slot is on the way', () => {
  let t: TestApp;
  let held: (() => void)[] = [];
  let asked = 0;
  let granted = 0;

  beforeAll(async () => {
    t = await startApp();
    const broker = t.app.get(SlotBroker);
    const take = broker.take.bind(broker);
    // Every slot waits until the test lets it through.
    jest.spyOn(broker, 'take').mockImplementation(
      (ip: string) =>
        new Promise<SlotRefusal | null>((resolve) => {
          asked++;
          held.push(
            () =>
              void take(ip).then((refusal) => {
                resolve(refusal);
                granted++;
              }),
          );
        }),
    );
  });
  afterAll(() => t.close());

  /** Lets the held slots through and waits until the code awaiting them has run. */
  const release = async () => {
    await waitFor(() => held.length > 0, 5000);
    const go = held;
    held = [];
    const target = granted + go.length;
    for (const f of go) f();
    await waitFor(() => granted === target, 5000);
    await new Promise((r) => setImmediate(r));
  };
  const settled = () => waitFor(() => t.app.get(ConnectionRegistry).counts().total === 0 && t.hub.memberships() === 0, 5000, () => JSON.stringify({ counts: t.app.get(ConnectionRegistry).counts(), members: t.hub.memberships() }));

  it('SSE', async () => {
    const before = asked;
    const req = http.get(`${t.url}${SSE_PATH}?pairs=BTC-USD`, { agent: false });
    req.on('error', () => undefined);
    await waitFor(() => asked > before, 5000);
    req.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await release();
    await settled();
  });

  it('WebSocket', async () => {
    const before = asked;
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}${WS_PATH}?pairs=BTC-USD`);
    ws.on('error', () => undefined);
    await waitFor(() => asked > before, 5000);
    ws.terminate();
    await new Promise((r) => setTimeout(r, 50));
    await release();
    await settled();
  });

  it('Socket.IO', async () => {
    const before = asked;
    const socket = io(`${t.url}${SOCKET_NAMESPACE}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { pairs: ['BTC-USD'] } });
    await waitFor(() => asked > before, 5000);
    socket.io.engine.close();
    socket.close();
    await new Promise((r) => setTimeout(r, 50));
    await release();
    await settled();
  });

  it('and one that stays gets its stream once the slot comes', async () => {
    const before = asked;
    const got = new Promise<string>((resolve, reject) => {
      const req = http.get(`${t.url}${SSE_PATH}?pairs=BTC-USD`, { agent: false }, (res) => {
        res.setEncoding('utf8');
        res.once('data', (chunk: string) => {
          req.destroy();
          resolve(`${res.statusCode} ${chunk.slice(0, 10)}`);
        });
      });
      req.on('error', reject);
    });
    await waitFor(() => asked > before, 5000);
    await release();
    expect(await got).toBe('200 retry: 200');
    await settled();
  });
});
