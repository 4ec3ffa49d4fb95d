import { WindowThrottlerStorage } from './window-throttler.storage';

const MINUTE = 60_000;

describe(WindowThrottlerStorage.name, () => {
  let now: number;
  let storage: WindowThrottlerStorage;
  beforeEach(() => {
    now = 1_000_000;
    storage = new WindowThrottlerStorage(() => now);
  });
  afterEach(() => storage.onApplicationShutdown());

  it('lets the limit through in a window and blocks the next hit with the time left as Retry-After', () => {
    for (let i = 1; i <= 5; i++) expect(storage.hit('k', MINUTE, 5, MINUTE)).toEqual({ totalHits: i, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
    now += 10_000;
    expect(storage.hit('k', MINUTE, 5, MINUTE)).toMatchObject({ isBlocked: true, timeToBlockExpire: 60 });
    now += 30_500;
    expect(storage.hit('k', MINUTE, 5, MINUTE)).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
  });

  it('opens a fresh window when the block ends, and counts keys apart', () => {
    for (let i = 0; i < 6; i++) storage.hit('a', MINUTE, 5, MINUTE);
    expect(storage.hit('b', MINUTE, 5, MINUTE)).toMatchObject({ isBlocked: false, totalHits: 1 });
    now += MINUTE;
    expect(storage.hit('a', MINUTE, 5, MINUTE)).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
  });

  it('starts counting again when a window ends without a block', () => {
    for (let i = 0; i < 5; i++) storage.hit('k', MINUTE, 5, MINUTE);
    now += MINUTE;
    expect(storage.hit('k', MINUTE, 5, MINUTE)).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('blocks until the window ends when the block duration is 0', () => {
    for (let i = 0; i < 3; i++) storage.hit('k', MINUTE, 2, 0);
    now += 45_000;
    expect(storage.hit('k', MINUTE, 2, 0)).toMatchObject({ isBlocked: true, timeToBlockExpire: 15 });
  });

  it('does the same work per hit however many hits the window holds: one fixed-size record per key, never a list of hits', () => {
    // The library's storage kept one expiry per hit and filtered that list on every hit, so a
    // client's n-th request in a minute cost O(n). A record that stays the same size cannot be
    // scanned per hit: what one client's flood costs per request does not grow with its rate.
    storage.hit('flood', MINUTE, 1_000_000, MINUTE);
    const record = (storage as unknown as { records: Map<string, unknown> }).records.get('flood');
    const shape = JSON.stringify(Object.keys(record as object));
    for (let i = 1; i < 200_000; i++) storage.hit('flood', MINUTE, 1_000_000, MINUTE);
    const after = (storage as unknown as { records: Map<string, Record<string, unknown>> }).records.get('flood')!;
    expect(after).toBe(record);
    expect(JSON.stringify(Object.keys(after))).toBe(shape);
    expect(Object.values(after).every((v) => typeof v === 'number')).toBe(true);
    expect(after.hits).toBe(200_000);
    expect(storage.size).toBe(1);
    // And past the limit each further hit is refused without being counted (nothing grows).
    for (let i = 0; i < 1_000; i++) storage.hit('small', MINUTE, 10, MINUTE);
    expect((storage as unknown as { records: Map<string, Record<string, unknown>> }).records.get('small')).toMatchObject({ hits: 11 });
  });

  it('forgets keys whose window and block are over when it sweeps', () => {
    storage.hit('old', MINUTE, 5, MINUTE);
    now += 30_000;
    for (let i = 0; i < 6; i++) storage.hit('blocked', MINUTE, 5, MINUTE);
    now += 29_999;
    storage.hit('new', MINUTE, 5, MINUTE);
    now += 1;
    storage.evictExpired();
    expect(storage.size).toBe(2);
    now += MINUTE;
    storage.evictExpired();
    expect(storage.size).toBe(0);
  });
});
