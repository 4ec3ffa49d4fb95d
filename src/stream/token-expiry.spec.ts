import { streamEnd, type Grant } from '../auth/token-verifier';
import type { DisconnectReason } from '../shared/wire';
import type { Lease } from './connection-registry';
import { hubSetup, RecordingSink } from './stream.testing';

const grant = (expiresAt: number): Grant => ({ sub: 'alice', kid: undefined, pairs: null, minConflateMs: 0, maxConnections: null, expiresAt, tier: 'other' });

describe('a stream with a token', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_900_000_000_000 }));
  afterEach(() => jest.useRealTimers());

  const setup = () => {
    const { hub, publish } = hubSetup();
    const released: DisconnectReason[] = [];
    const open = (g: Grant | undefined) => {
      const sink = new RecordingSink();
      const lease: Lease = { transport: 'sse', ip: '127.0.0.1', grant: g, release: (reason) => released.push(reason), cancel: () => undefined };
      const sub = hub.open(sink, lease);
      sub.subscribe(['BTC-USD'], undefined, undefined);
      return { sink, sub };
    };
    return { hub, publish, open, released };
  };

  it('ends with `expired` at its exp plus the clock allowance, by one timer and no per-tick work', async () => {
    const { open, released, publish } = setup();
    const before = jest.getTimerCount();
    const { sink } = open(grant(Date.now() + 10_000));
    expect(jest.getTimerCount()).toBe(before + 1);
    for (let i = 0; i < 20; i++) await publish('BTC-USD');
    expect(jest.getTimerCount()).toBe(before + 1);
    jest.advanceTimersByTime(streamEnd(grant(10_000)) - 1);
    expect(sink.ended).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(sink.ended).toEqual(['expired']);
    expect(released).toEqual(['expired']);
    expect(jest.getTimerCount()).toBe(before);
  });

  it('clears the timer when the stream closes first; an anonymous stream has none; a refresh moves the end', () => {
    const { open, released } = setup();
    const before = jest.getTimerCount();
    const anonymous = open(undefined);
    expect(jest.getTimerCount()).toBe(before);
    const gone = open(grant(Date.now() + 10_000));
    gone.sub.closed('client');
    expect(jest.getTimerCount()).toBe(before);
    const refreshed = open(grant(Date.now() + 1_000));
    refreshed.sub.grant = grant(Date.now() + 60_000);
    refreshed.sub.expireAt(streamEnd(refreshed.sub.grant));
    expect(jest.getTimerCount()).toBe(before + 1);
    jest.advanceTimersByTime(30_000);
    expect(refreshed.sink.ended).toEqual([]);
    jest.advanceTimersByTime(40_000);
    expect(refreshed.sink.ended).toEqual(['expired']);
    expect(anonymous.sink.ended).toEqual([]);
    expect(released).toEqual(['client', 'expired']);
  });

  it('ends at once a stream whose token is already past its end, and arms a far expiry in steps setTimeout can hold', () => {
    const { open } = setup();
    const late = open(grant(Date.now() - 60_000));
    expect(late.sink.ended).toEqual(['expired']);
    const far = open(grant(Date.now() + 40 * 86_400_000));
    jest.advanceTimersByTime(39 * 86_400_000);
    expect(far.sink.ended).toEqual([]);
    jest.advanceTimersByTime(86_400_000 + 5_000);
    expect(far.sink.ended).toEqual(['expired']);
  });
});
