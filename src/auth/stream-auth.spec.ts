import { loadConfig } from '../config/app-config';
import { ApiError } from '../http/api-error';
import { MetricsService } from '../metrics/metrics.service';
import { SlotCounter } from '../stream/slots';
import { authToken, bearerToken, protocolToken, redactToken } from './credentials';
import { restPairs } from './rest-auth';
import { StreamAuth } from './stream-auth';
import type { Grant } from './token-verifier';

const grant = (over: Partial<Grant> = {}): Grant => ({ sub: 'alice', kid: undefined, pairs: null, minConflateMs: 0, maxConnections: null, expiresAt: Date.now() + 60_000, tier: 'other', ...over });
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof ApiError ? `${err.statusCode} ${err.code}` : 'not an ApiError';
  }
  return undefined;
};

describe('StreamAuth', () => {
  const config = loadConfig({ PAIRS: 'BTC-USD,ETH-USD,SOL-USD', AUTH_JWT_SECRET: 'x'.repeat(32), AUTH_REQUIRED: 'streams' });
  const auth = new StreamAuth(config, new MetricsService());
  const command = (pairs: string[], conflateMs?: number) => ({ pairs, resume: undefined, conflateMs });

  it('refuses pairs the token does not grant with 403 PAIR_NOT_ENTITLED, and gives a request that names none the granted ones', () => {
    const g = grant({ pairs: new Set(['BTC-USD', 'SOL-USD']) });
    expect(auth.entitle(g, command(['BTC-USD']), true).pairs).toEqual(['BTC-USD']);
    expect(codeOf(() => auth.entitle(g, command(['BTC-USD', 'ETH-USD']), true))).toBe('403 PAIR_NOT_ENTITLED');
    expect(auth.defaultPairs(g)).toEqual(['BTC-USD', 'SOL-USD']);
    expect(auth.defaultPairs(grant())).toBeUndefined();
    expect(auth.entitle(null, command(['ETH-USD']), true).pairs).toEqual(['ETH-USD']);
  });

  it('raises the conflation interval to the token minimum, whatever is asked; a later subscribe without conflate keeps the connection\'s', () => {
    const g = grant({ minConflateMs: 1000 });
    expect(auth.entitle(g, command(['BTC-USD']), true).conflateMs).toBe(1000);
    expect(auth.entitle(g, command(['BTC-USD'], 0), false).conflateMs).toBe(1000);
    expect(auth.entitle(g, command(['BTC-USD'], 10), true).conflateMs).toBe(1000);
    expect(auth.entitle(g, command(['BTC-USD'], 5000), true).conflateMs).toBe(5000);
    expect(auth.entitle(g, command(['BTC-USD']), false).conflateMs).toBeUndefined();
  });

  it('needs a token for streams with AUTH_REQUIRED=streams, not for REST; without a key never', async () => {
    await expect(auth.authorize('sse', undefined)).rejects.toMatchObject({ code: 'UNAUTHORIZED', statusCode: 401 });
    await expect(auth.authorize('rest', undefined)).resolves.toBeNull();
    const open = new StreamAuth(loadConfig({}), new MetricsService());
    await expect(open.authorize('sse', undefined)).resolves.toBeNull();
    await expect(open.authorize('websocket', 'whatever')).resolves.toBeNull();
    expect(open.enabled).toBe(false);
  });
});

describe('credentials', () => {
  it('reads the bearer header, the WebSocket subprotocol and Socket.IO auth.token', () => {
    expect(bearerToken({ authorization: 'Bearer a.b.c' })).toBe('a.b.c');
    expect(bearerToken({ authorization: 'bearer   a.b.c ' })).toBe('a.b.c');
    expect(bearerToken({ authorization: 'Basic xyz' })).toBe('Basic xyz');
    expect(bearerToken({})).toBeUndefined();
    expect(protocolToken({ 'sec-websocket-protocol': 'price-stream, bearer.a.b.c' })).toBe('a.b.c');
    expect(protocolToken({ 'sec-websocket-protocol': 'price-stream' })).toBeUndefined();
    expect(authToken({ pairs: ['BTC-USD'], token: 'a.b.c' })).toBe('a.b.c');
    expect(authToken({ token: 42 })).toBe('');
    expect(authToken({ pairs: [] })).toBeUndefined();
    expect(authToken(null)).toBeUndefined();
  });

  it('redacts a token parameter from a logged target', () => {
    expect(redactToken('/api/prices/stream?pairs=BTC-USD&token=a.b.c&x=1')).toBe('/api/prices/stream?pairs=BTC-USD&token=[redacted]&x=1');
    expect(redactToken('/api/prices/stream?token=a.b.c')).toBe('/api/prices/stream?token=[redacted]');
    expect(redactToken('/x?access_token=s3cret#f')).toBe('/x?access_token=[redacted]#f');
    expect(redactToken('/api/pairs')).toBe('/api/pairs');
  });
});

describe('restPairs', () => {
  const configured = ['BTC-USD', 'ETH-USD'];
  const pairsOf = (target: string) => {
    const url = new URL(target, 'http://x');
    return restPairs(url.pathname, url.searchParams, configured);
  };

  it('names what a REST request reads; nothing outside /api/, for admin routes and streams', () => {
    expect(pairsOf('/api/prices/btc-usd')).toEqual(['BTC-USD']);
    expect(pairsOf('/api/prices/BTC%2FUSD/history')).toEqual(['BTC-USD']);
    expect(pairsOf('/api/prices?pairs=ETH/USD,nope')).toEqual(['ETH-USD']);
    expect(pairsOf('/api/prices')).toEqual(configured);
    expect(pairsOf('/api/pairs')).toEqual(configured);
    expect(pairsOf('/api/v1/ltp?pair=BTC/USD')).toEqual(['BTC-USD']);
    expect(pairsOf('/api/v1/ltp/cached')).toEqual(configured);
    expect(pairsOf('/api/price/current')).toEqual(['BTC-USD']);
    for (const free of ['/health/live', '/metrics', '/docs', '/', '/api/admin/refresh', '/api/v1/ltp/refresh', '/api/prices/stream']) expect(pairsOf(free)).toBeNull();
  });
});

describe('SlotCounter per sub', () => {
  it('counts a key against its own cap when one is given', () => {
    const slots = new SlotCounter(100, 2);
    expect([slots.take('sub:a', 3), slots.take('sub:a', 3), slots.take('sub:a', 3), slots.take('sub:a', 3)]).toEqual([null, null, null, 'ip']);
    expect([slots.take('10.0.0.1'), slots.take('10.0.0.1'), slots.take('10.0.0.1')]).toEqual([null, null, 'ip']);
  });
});
