import { EventEmitter } from 'node:events';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { from, mergeAll, of, type Observable } from 'rxjs';
import type { Socket } from 'socket.io';
import { loadConfig } from '../config/app-config';
import type { LifecycleService } from '../lifecycle/lifecycle.service';
import { flush } from '../stream/stream.testing';
import { PricesIoAdapter } from './prices-io.adapter';

/** What Nest passes as `transform` (WebSocketsController.pickResult): the handler's result, a value or a promise, as an Observable. */
const transform = (result: unknown): Observable<unknown> => from((async () => (result instanceof Promise ? from(result) : of(result)))()).pipe(mergeAll());

class FakeSocket extends EventEmitter {
  emitted: unknown[][] = [];
  // Socket.emit sends to the client; the fake records it instead of calling listeners.
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'subscribe' || event === 'other') return super.emit(event, ...args);
    this.emitted.push([event, ...args]);
    return true;
  }
}

function setup(handle: (data: unknown) => unknown, isAckHandledManually = false) {
  const adapter = new PricesIoAdapter({} as INestApplicationContext, loadConfig({}), {} as LifecycleService);
  const socket = new FakeSocket();
  const handlers = [{ message: 'subscribe', callback: handle, isAckHandledManually, methodName: 'subscribe' }] as unknown as MessageMappingProperties[];
  adapter.bindMessageHandlers(socket as unknown as Socket, handlers, transform as (data: unknown) => Observable<unknown>);
  return socket;
}

describe('PricesIoAdapter.bindMessageHandlers', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('acknowledges with the handler’s result, sync or async, with one plain listener per handler', async () => {
    const socket = setup((data) => (data === 'later' ? Promise.resolve({ ok: 'later' }) : { ok: data }));
    expect(socket.listenerCount('subscribe')).toBe(1);
    const acks: unknown[] = [];
    socket.emit('subscribe', 'now', (r: unknown) => acks.push(r));
    socket.emit('subscribe', 'later', (r: unknown) => acks.push(r));
    await flush();
    expect(acks).toEqual([{ ok: 'now' }, { ok: 'later' }]);
  });

  it('emits an {event, data} result instead of acknowledging, and ignores null results and manual acks', async () => {
    const emitting = setup(() => ({ event: 'price', data: 42 }));
    const acks: unknown[] = [];
    emitting.emit('subscribe', {}, (r: unknown) => acks.push(r));
    const silent = setup(() => null);
    silent.emit('subscribe', {}, (r: unknown) => acks.push(r));
    const manual = setup(() => ({ ok: true }), true);
    manual.emit('subscribe', {}, (r: unknown) => acks.push(r));
    await flush();
    expect(emitting.emitted).toEqual([['price', 42]]);
    expect(acks).toEqual([]);
  });

  it('logs a handler that throws or rejects, and keeps handling the next messages', async () => {
    const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    let n = 0;
    const socket = setup(() => {
      n++;
      if (n === 1) throw new Error('sync');
      if (n === 2) return Promise.reject(new Error('async'));
      return { ok: n };
    });
    const acks: unknown[] = [];
    for (let i = 0; i < 3; i++) socket.emit('subscribe', {}, (r: unknown) => acks.push(r));
    await flush();
    expect(error).toHaveBeenCalledTimes(2);
    expect(acks).toEqual([{ ok: 3 }]);
    error.mockRestore();
  });
});
