import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig } from './app-config';

describe('loadConfig', () => {
  it('applies the contract defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 8080, pairs: ['BTC-USD'], pollIntervalMs: 5000, clientBufferSize: 50, heartbeatIntervalMs: 15000, trustProxy: false });
    expect(c.priceSources).toEqual(['kraken', 'coinbase', 'coingecko', 'coindesk']);
    expect(c.staleAfterMs).toBe(30000);
  });

  it('reads WORKERS as a count or auto, and scales the default MAX_STREAM_CONNECTIONS with it', () => {
    expect(loadConfig({})).toMatchObject({ workers: 1, maxStreamConnections: 19_000, workerIndex: undefined });
    expect(loadConfig({ WORKERS: '3' })).toMatchObject({ workers: 3, maxStreamConnections: 57_000 });
    expect(loadConfig({ WORKERS: '3', MAX_STREAM_CONNECTIONS: '100' }).maxStreamConnections).toBe(100);
    expect(loadConfig({ WORKERS: 'auto' }).workers).toBe(availableParallelism());
    for (const bad of ['0', '-1', 'two', '257']) expect(() => loadConfig({ WORKERS: bad })).toThrow(/WORKERS=.*auto, or a whole number from 1 to 256/);
  });

  it("takes inherited listening sockets (LISTEN_FDS) only when LISTEN_PID is this process, from fd 3 on, and only with one process", () => {
    expect(loadConfig({}).inheritedFds).toEqual([]);
    expect(loadConfig({ LISTEN_FDS: '3', LISTEN_PID: '4242' }, 4242).inheritedFds).toEqual([3, 4, 5]);
    expect(loadConfig({ LISTEN_FDS: '8', LISTEN_PID: String(process.pid) }).inheritedFds).toHaveLength(8);
    // sd_listen_fds(3): without LISTEN_PID, or with another process' pid, the sockets are not this process' (nor read).
    expect(loadConfig({ LISTEN_FDS: '3' }, 4242).inheritedFds).toEqual([]);
    expect(loadConfig({ LISTEN_FDS: '3', LISTEN_PID: '4243' }, 4242).inheritedFds).toEqual([]);
    expect(loadConfig({ LISTEN_FDS: '0', LISTEN_PID: '4243' }, 4242).inheritedFds).toEqual([]);
    for (const bad of ['0', 'two', '65']) expect(() => loadConfig({ LISTEN_FDS: bad, LISTEN_PID: '4242' }, 4242)).toThrow(/LISTEN_FDS=/);
    expect(() => loadConfig({ LISTEN_FDS: '2', LISTEN_PID: '4242', WORKERS: '2' }, 4242)).toThrow(ConfigError);
    expect(() => loadConfig({ LISTEN_FDS: '2', LISTEN_PID: '4242', WORKERS: '2' }, 4242)).toThrow(/LISTEN_FDS="2": inherited listening sockets are served by one process \(WORKERS=1\)/);
    // Another process' sockets do not stop WORKERS from binding PORT.
    expect(loadConfig({ LISTEN_FDS: '2', LISTEN_PID: '4243', WORKERS: '2' }, 4242).workers).toBe(2);
  });

  it('normalises pairs and treats empty strings as unset', () => {
    const c = loadConfig({ PAIRS: 'btc/usd, ETH-usd,BTC-USD', PORT: '' });
    expect(c.pairs).toEqual(['BTC-USD', 'ETH-USD']);
    expect(c.port).toBe(8080);
  });

  it('names every bad variable and the accepted form', () => {
    const attempt = () => loadConfig({ PORT: '80a', PRICE_SOURCES: 'kraken,binance', TRUST_PROXY: 'maybe', KRAKEN_URL: 'ftp://x', PAIRS: 'BTCUSD' });
    expect(attempt).toThrow(ConfigError);
    const message = (() => {
      try {
        attempt();
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(message).toContain('PORT="80a": a whole number from 0 to 65535');
    expect(message).toContain('PRICE_SOURCES="kraken,binance": one of kraken, coinbase, coingecko, coindesk, simulated');
    expect(message).toContain('TRUST_PROXY="maybe"');
    expect(message).toContain('KRAKEN_URL="ftp://x"');
    expect(message).toContain('PAIRS="BTCUSD": "BTCUSD" is not a pair');
  });

  it('reads TRUST_PROXY as off, a hop count or trusted addresses, and refuses true', () => {
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback,::1' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback', '::1']);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY="true": true would trust an address the client writes itself/);
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/8,nginx' })).toThrow(/TRUST_PROXY="10.0.0.0\/8,nginx": false, a hop count, or/);
  });

  it('reads one <SOURCE>_URL per HTTP upstream of the source list, without a trailing slash', () => {
    expect(loadConfig({}).sourceUrls).toEqual({
      kraken: 'https://api.kraken.com',
      coinbase: 'https://api.coinbase.com',
      coingecko: 'https://api.coingecko.com',
      coindesk: 'https://data-api.coindesk.com',
    });
    expect(loadConfig({ COINGECKO_URL: 'http://127.0.0.1:9/', KRAKEN_URL: 'http://k.test' }).sourceUrls).toMatchObject({
      coingecko: 'http://127.0.0.1:9',
      kraken: 'http://k.test',
    });
  });

  it('reads the price-truth settings with failover, 10 %, 3 answers, 3 % and no tick bound as defaults', () => {
    expect(loadConfig({})).toMatchObject({ priceMode: 'failover', maxJumpPct: 10, jumpConfirmations: 3, maxDeviationPct: 3, minTickIntervalMs: 0 });
    expect(loadConfig({ PRICE_MODE: 'median', MAX_JUMP_PCT: '12.5', MAX_DEVIATION_PCT: '0.5', MIN_TICK_INTERVAL_MS: '250' })).toMatchObject({
      priceMode: 'median',
      maxJumpPct: 12.5,
      maxDeviationPct: 0.5,
      minTickIntervalMs: 250,
    });
  });

  it('names PRICE_MODE, MAX_JUMP_PCT and JUMP_CONFIRMATIONS when they are invalid', () => {
    expect(() => loadConfig({ PRICE_MODE: 'mean' })).toThrow(/PRICE_MODE="mean": failover or median/);
    expect(() => loadConfig({ MAX_JUMP_PCT: '-1' })).toThrow(/MAX_JUMP_PCT="-1": a number from 0.1 to 1000/);
    expect(() => loadConfig({ JUMP_CONFIRMATIONS: '0' })).toThrow(/JUMP_CONFIRMATIONS="0": at least 1/);
  });

  it('reads the push feed URLs, with off for poll only, and names a bad one', () => {
    expect(loadConfig({})).toMatchObject({ pushUrls: { kraken: 'wss://ws.kraken.com/v2', coinbase: 'wss://ws-feed.exchange.coinbase.com' }, pushStaleMs: 10_000, pushAckTimeoutMs: 10_000 });
    expect(loadConfig({ PUSH_STALE_MS: '3000' }).pushAckTimeoutMs).toBe(3000);
    expect(loadConfig({ PUSH_STALE_MS: '3000', PUSH_ACK_TIMEOUT_MS: '500' }).pushAckTimeoutMs).toBe(500);
    expect(loadConfig({ KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'ws://127.0.0.1:9/feed' }).pushUrls).toEqual({ kraken: null, coinbase: 'ws://127.0.0.1:9/feed' });
    expect(() => loadConfig({ KRAKEN_WS_URL: 'https://ws.kraken.com' })).toThrow(/KRAKEN_WS_URL="https:\/\/ws.kraken.com": a ws:\/\/ or wss:\/\/ URL, or off/);
  });

  it('rejects a number out of range', () => {
    expect(() => loadConfig({ POLL_INTERVAL_MS: '5' })).toThrow(/POLL_INTERVAL_MS="5": at least 100/);
  });

  it('reads Redis as one URL, or as a primary followed through Sentinel', () => {
    expect(loadConfig({}).redis).toBeNull();
    expect(loadConfig({ REDIS_URL: 'rediss://:pw@cache:6380' }).redis).toEqual({ kind: 'url', url: 'rediss://:pw@cache:6380' });
    expect(
      loadConfig({ REDIS_SENTINELS: '10.0.0.5:26379, sentinel-b ,[::1]:26380', REDIS_SENTINEL_NAME: 'mymaster', REDIS_PASSWORD: 'data-pw', REDIS_SENTINEL_PASSWORD: 'sentinel-pw', REDIS_TLS: '1' }).redis,
    ).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.5', port: 26379 },
        { host: 'sentinel-b', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
      password: 'data-pw',
      sentinelPassword: 'sentinel-pw',
      tls: true,
    });
    expect(loadConfig({ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }).redis).toMatchObject({ password: undefined, sentinelPassword: undefined, tls: false });
  });

  it('refuses a Sentinel configuration that cannot work, naming the variable', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:26379' })).toThrow(/REDIS_SENTINEL_NAME="": required with REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:26379', REDIS_SENTINEL_NAME: 'm', REDIS_URL: 'redis://x' })).toThrow(/REDIS_URL="redis:\/\/x": set either REDIS_URL or REDIS_SENTINELS, not both/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:99999', REDIS_SENTINEL_NAME: 'm' })).toThrow(/REDIS_SENTINELS="a:99999": "a:99999" is not host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a b:1', REDIS_SENTINEL_NAME: 'm' })).toThrow(/is not host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: ' , ', REDIS_SENTINEL_NAME: 'm' })).toThrow(/REDIS_SENTINELS=" , ": at least one host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a', REDIS_SENTINEL_NAME: 'my master' })).toThrow(/REDIS_SENTINEL_NAME="my master": the monitored primary's name/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a', REDIS_SENTINEL_NAME: 'm', REDIS_TLS: 'maybe' })).toThrow(/REDIS_TLS="maybe": 1 or 0/);
    // The Sentinel-only variables without REDIS_SENTINELS are a mistake, not something to ignore.
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_PASSWORD: 'pw' })).toThrow(/REDIS_PASSWORD="pw": only used with REDIS_SENTINELS; with REDIS_URL the password goes in the URL/);
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_TLS: 'yes' })).toThrow(/REDIS_TLS="yes": only used with REDIS_SENTINELS; with REDIS_URL use a rediss:\/\/ URL/);
    expect(() => loadConfig({ REDIS_SENTINEL_NAME: 'm' })).toThrow(/REDIS_SENTINEL_NAME="m": only used with REDIS_SENTINELS/);
    expect(loadConfig({ REDIS_URL: 'redis://x', REDIS_TLS: '0' }).redis).toEqual({ kind: 'url', url: 'redis://x' });
  });
});
