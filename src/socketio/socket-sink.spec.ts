import { EventEmitter } from 'node:events';
import { Encoder } from 'socket.io-parser';
import type { Tick } from '../shared/wire';
import { priceMessage } from '../stream/encoded';
import type { Subscriber } from '../stream/stream-hub';
import { flush } from '../stream/stream.testing';
import { PacketEncoder, SocketSink, type PricesSocket } from './socket-sink';

type Written = { packet: string; frames: Buffer[] | undefined };

/** engine.io's connection as the sink uses it: `write` hands the packet on at once (a writable transport). */
class FakeConn extends EventEmitter {
  written: Written[] = [];
  constructor(readonly transport: { name: string }) {
    super();
  }
  write(packet: string, options: { wsPreEncodedFrame?: Buffer[] }): void {
    this.emit('packetCreate');
    this.written.push({ packet, frames: options.wsPreEncodedFrame });
    this.emit('flush', [packet]);
  }
  close(): void {
    this.closed = true;
  }
  closed = false;
}

function setup(transport: 'websocket' | 'polling', deflate = false, shared?: PacketEncoder) {
  const conn = new FakeConn({ name: transport });
  const emitted: unknown[][] = [];
  const socket = { connected: true, conn, emit: (...args: unknown[]) => emitted.push(args) } as unknown as PricesSocket;
  const encoder = shared ?? new PacketEncoder(new Encoder() as unknown as ConstructorParameters<typeof PacketEncoder>[0], '/prices', deflate);
  const sink = new SocketSink(socket, encoder);
  sink.bind({ drained: () => undefined } as unknown as Subscriber);
  return { conn, sink, encoder, emitted };
}

const tick = (id: string, pair = 'BTC-USD'): Tick => ({ id, pair, price: '1', timestamp: '2026-01-01T00:00:00.000Z', source: 'simulated' }) as unknown as Tick;

/** The WebSocket text frame a client gets for one engine.io message (unmasked, payload under 126 bytes). */
const textFrame = (payload: string): Buffer => Buffer.concat([Buffer.from([0x81, Buffer.byteLength(payload)]), Buffer.from(payload)]);

describe('SocketSink', () => {
  it('pre-encodes a tick as its Socket.IO packet and one WebSocket frame in one buffer', () => {
    const { encoder } = setup('websocket');
    const { packet, options } = encoder.encode(priceMessage(tick('1-0')));
    expect(packet).toBe(`2/prices,${JSON.stringify(['price', tick('1-0')])}`);
    expect(options.wsPreEncodedFrame).toEqual([textFrame(`4${packet}`)]);
  });

  it('writes a turn of packets on WebSocket as one write of their frames back to back, shared by sockets with the same packets', async () => {
    const a = setup('websocket');
    const b = setup('websocket', false, a.encoder);
    const messages = [priceMessage(tick('1-0')), priceMessage(tick('2-0', 'ETH-USD'))];
    for (const m of messages) {
      expect(a.sink.write(m)).toBe(true);
      expect(b.sink.write(m)).toBe(true);
    }
    expect(a.conn.written).toEqual([]);
    await flush();
    const packets = messages.map((m) => a.encoder.encode(m).packet);
    expect(a.conn.written).toHaveLength(1);
    expect(a.conn.written[0].frames).toEqual([Buffer.concat(packets.map((p) => textFrame(`4${p}`)))]);
    expect(b.conn.written[0].frames?.[0]).toBe(a.conn.written[0].frames?.[0]);
  });

  it('writes packet by packet on polling, and with per-message deflate (engine.io would encode the joined packet itself)', async () => {
    for (const { conn, sink, encoder } of [setup('polling'), setup('websocket', true)]) {
      const messages = [priceMessage(tick('1-0')), priceMessage(tick('2-0'))];
      for (const m of messages) sink.write(m);
      await flush();
      expect(conn.written.map((w) => w.packet)).toEqual(messages.map((m) => encoder.encode(m).packet));
    }
  });

  it('hands what waits to engine.io before anything else the socket sends (a notice, an acknowledgement)', () => {
    const { conn, sink, encoder, emitted } = setup('websocket');
    const m = priceMessage(tick('1-0'));
    sink.write(m);
    sink.end('shutdown');
    expect(conn.written.map((w) => w.packet)).toEqual([encoder.encode(m).packet]);
    expect(emitted.map(([event]) => event)).toEqual(['notice']);
    expect(conn.closed).toBe(true);
  });

  it('drops what waits when the socket is cut off', async () => {
    const { conn, sink } = setup('websocket');
    sink.write(priceMessage(tick('1-0')));
    sink.end('slow');
    await flush();
    expect(conn.written).toEqual([]);
    expect(conn.closed).toBe(true);
  });
});
