import { Requests } from './ipc';

describe(Requests.name, () => {
  afterEach(() => jest.useRealTimers());

  it('matches answers to requests by n, ignores unknown ones, times out and fails all when the channel goes', async () => {
    jest.useFakeTimers();
    const sent: { ps: string; n: number }[] = [];
    const r = new Requests((msg) => sent.push(msg));
    const a = r.request<string>({ ps: 'take' }, 1000);
    const b = r.request<string>({ ps: 'take' }, 1000);
    const c = r.request<string>({ ps: 'metrics' }, 1000);
    expect(sent.map((m) => m.n)).toEqual([1, 2, 3]);
    r.settle(2, 'second');
    r.settle(99, 'nobody asked');
    await expect(b).resolves.toBe('second');
    jest.advanceTimersByTime(1000);
    await expect(a).rejects.toThrow('no answer to take within 1000 ms');
    await expect(c).rejects.toThrow('no answer to metrics within 1000 ms');
    const d = r.request<string>({ ps: 'hello' }, 1000);
    r.failAll('the primary is gone');
    await expect(d).rejects.toThrow('the primary is gone');
    r.settle(4, 'late');
  });

  it('hands an answer that comes after the timeout to the late handler (a granted slot is given back)', async () => {
    jest.useFakeTimers();
    const r = new Requests(() => undefined);
    const late: unknown[] = [];
    const a = r.request<string | null>({ ps: 'take' }, 1000, (v) => late.push(v));
    jest.advanceTimersByTime(1000);
    await expect(a).rejects.toThrow('no answer to take within 1000 ms');
    r.settle(1, null);
    r.settle(1, null); // once only
    expect(late).toEqual([null]);
  });

  it('rejects at once when the message cannot be sent', async () => {
    const r = new Requests(() => {
      throw new Error('channel closed');
    });
    await expect(r.request({ ps: 'take' }, 1000)).rejects.toThrow('channel closed');
  });
});
