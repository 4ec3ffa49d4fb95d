import { Logger } from '@nestjs/common';
import type { Worker } from 'node:cluster';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import type { ToWorker } from './ipc';
import { Members } from './members';
import { PrimaryDoors } from './primary-doors';
import { SharedDoor } from './worker-door';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A door of capacity 4 (it listens again at 3): `may` is the primary's answer to its `full`. */
async function door(may: boolean, capacity = 4) {
  const port = await freePort();
  const accepted: Socket[] = [];
  const calls = { full: 0, reopened: 0 };
  const d = new SharedDoor({
    port,
    host: '127.0.0.1',
    backlog: 16,
    capacity,
    accept: (s) => accepted.push(s),
    mayClose: () => {
      calls.full++;
      return Promise.resolve(may);
    },
    reopened: () => calls.reopened++,
  });
  await d.listen();
  const clients: Socket[] = [];
  const open = async () => {
    const c = connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    clients.push(c);
    await once(c, 'connect');
    return c;
  };
  const cleanup = () => {
    d.stop();
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
  };
  return { d, port, accepted, calls, open, cleanup };
}

describe('SharedDoor: a worker at its open-files capacity', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('stops accepting at capacity when the primary agrees, and listens again a margin below it', async () => {
    const t = await door(true);
    try {
      for (let i = 0; i < 4; i++) await t.open();
      while (t.d.open) await sleep(5);
      expect(t.accepted).toHaveLength(4);
      expect(t.calls.full).toBe(1);
      // One closed: 3 held, the reopening mark for a capacity of 4.
      t.accepted[0].destroy();
      while (!t.d.open) await sleep(5);
      expect(t.d.holding).toBe(3);
      expect(t.calls.reopened).toBe(1);
      await t.open();
      while (t.accepted.length < 5) await sleep(5);
    } finally {
      t.cleanup();
    }
  });

  it('asks to close a hundredth short of capacity, so that what it accepts meanwhile still fits', async () => {
    // Capacity 200: it asks at 198 (listens again at 190), not at 200.
    const t = await door(true, 200);
    try {
      for (let i = 0; i < 197; i++) await t.open();
      while (t.accepted.length < 197) await sleep(5);
      expect(t.calls.full).toBe(0);
      await t.open();
      while (t.d.open) await sleep(5);
      expect(t.calls.full).toBe(1);
      expect(t.d.holding).toBe(198);
    } finally {
      t.cleanup();
    }
  });

  it('keeps listening when no other worker accepts, and answers what it cannot take 503 TOO_MANY_CONNECTIONS with Retry-After', async () => {
    const t = await door(false);
    try {
      for (let i = 0; i < 4; i++) await t.open();
      while (t.accepted.length < 4) await sleep(5);
      const fifth = await t.open();
      let answer = '';
      fifth.setEncoding('latin1');
      fifth.on('data', (c: string) => (answer += c));
      await once(fifth, 'end');
      expect(answer).toMatch(/^HTTP\/1\.1 503 /);
      expect(answer).toContain('Retry-After: 1\r\n');
      expect(answer).toContain('"code":"TOO_MANY_CONNECTIONS"');
      expect(t.d.open).toBe(true);
      expect(t.accepted).toHaveLength(4);
      // Asked once, not again for each connection refused within a second.
      expect(t.calls.full).toBe(1);
    } finally {
      t.cleanup();
    }
  });

  it('listens again when the primary asks, full or not; not after its shutdown began', async () => {
    const t = await door(true);
    try {
      for (let i = 0; i < 4; i++) await t.open();
      while (t.d.open) await sleep(5);
      t.d.reopen();
      while (!t.d.open) await sleep(5);
      expect(t.calls.reopened).toBe(1);
      t.d.stop();
      expect(t.d.open).toBe(false);
      t.accepted[0].destroy();
      t.d.reopen();
      await sleep(20);
      expect(t.d.open).toBe(false);
    } finally {
      t.cleanup();
    }
  });
});

describe('PrimaryDoors', () => {
  function members(n: number) {
    const m = new Members();
    const sent = new Map<number, ToWorker[]>();
    for (let id = 1; id <= n; id++) {
      sent.set(id, []);
      const worker = { id, isConnected: () => true, send: (msg: ToWorker) => sent.get(id)!.push(msg) } as unknown as Worker;
      m.add(id, worker).ready = true;
    }
    return { m, sent };
  }

  it('lets a full worker stop only while another accepts, and has the stopped ones listen again when the last that accepts is gone', () => {
    const { m, sent } = members(3);
    const doors = new PrimaryDoors(m);
    const [w1, w2, w3] = [m.get(1)!, m.get(2)!, m.get(3)!];
    doors.receive(w1, { ps: 'full', n: 1 });
    doors.receive(w2, { ps: 'full', n: 1 });
    // w3 is the last to accept: it may not stop.
    doors.receive(w3, { ps: 'full', n: 1 });
    expect([1, 2, 3].map((id) => sent.get(id)!.at(-1))).toEqual([1, 2, 3].map((id) => ({ ps: 'answer', n: 1, value: id !== 3 })));
    // w2 accepts again, then w3 exits: w1 stays closed (w2 accepts).
    doors.receive(w2, { ps: 'open' });
    w3.ready = false;
    doors.gone(w3);
    expect(sent.get(1)!.some((msg) => msg.ps === 'reopen')).toBe(false);
    // w2 exits too: nobody accepts, so w1 is asked to listen again.
    w2.ready = false;
    doors.gone(w2);
    expect(sent.get(1)!.at(-1)).toEqual({ ps: 'reopen' });
  });
});
