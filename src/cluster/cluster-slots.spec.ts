import { SlotCounter } from '../stream/slots';
import { ClusterSlots, type SlotChannel } from './cluster-slots';
import type { TakeAnswer } from './ipc';

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A primary that counts with a SlotCounter, answering each `take` as PrimarySlots does. */
function primary(maxTotal: number, maxPerIp: number) {
  const counter = new SlotCounter(maxTotal, maxPerIp);
  const sent: string[] = [];
  let late: ((answer: TakeAnswer) => void) | undefined;
  let hold = false;
  const held: (() => void)[] = [];
  const channel: SlotChannel = {
    request: (msg, onLate) => {
      sent.push(`take ${msg.asks.map((a) => a.ip).join(',')}`);
      late = onLate;
      const answer = () => msg.asks.map(({ ip, max }) => counter.take(ip, max));
      if (!hold) return Promise.resolve(answer());
      return new Promise((_resolve, reject) => held.push(() => reject(new Error('no answer'))));
    },
    send: (msg) => {
      sent.push(`give ${msg.ip}`);
      counter.give(msg.ip);
    },
  };
  return { counter, sent, channel, late: (a: TakeAnswer) => late?.(a), holdAnswers: () => (hold = true), timeOut: () => held.forEach((f) => f()) };
}

describe('ClusterSlots', () => {
  it("asks for one turn's slots in one take and hands each its own answer, in order", async () => {
    const p = primary(10, 2);
    const slots = new ClusterSlots(p.channel);
    const answers = Promise.all([slots.take('a'), slots.take('a'), slots.take('a'), slots.take('b'), slots.take('sub:x', 1), slots.take('sub:x', 1)]);
    expect(p.sent).toEqual([]); // sent once the turn's I/O is done
    expect(await answers).toEqual([null, null, 'ip', null, null, 'ip']);
    expect(p.sent).toEqual(['take a,a,a,b,sub:x,sub:x']);
    expect(await slots.take('c')).toBeNull();
    expect(p.sent).toEqual(['take a,a,a,b,sub:x,sub:x', 'take c']);
  });

  it('gives back at once, so that a slot given before a take is free for it', async () => {
    const p = primary(1, 1);
    const slots = new ClusterSlots(p.channel);
    expect(await slots.take('a')).toBeNull();
    slots.give('a');
    expect(await slots.take('b')).toBeNull();
    expect(p.sent).toEqual(['take a', 'give a', 'take b']);
  });

  it('rejects every take of a batch the primary did not answer in time, and gives back what it granted late', async () => {
    const p = primary(10, 10);
    const slots = new ClusterSlots(p.channel);
    p.holdAnswers();
    const taken = Promise.allSettled([slots.take('a'), slots.take('b')]);
    await turn();
    p.timeOut();
    expect((await taken).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    p.late([null, 'ip']);
    expect(p.sent).toEqual(['take a,b', 'give a']);
  });
});
