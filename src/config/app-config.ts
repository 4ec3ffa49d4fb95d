import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { CONFLATE_MAX_MS, type SourceName } from '../shared/wire';
import { authConfig, authSchema, checkAuth, type AuthConfig } from './auth-config';
import { decimal, duration, flag, int, list, pairs, sentinels, sources, trustProxy, url, workers, wsUrl, type RedisNode, type TrustProxy } from './config-fields';

export type { RedisNode, TrustProxy } from './config-fields';
export type { AuthConfig } from './auth-config';

/** The HTTP upstreams' public origins; each is overridden by `<SOURCE>_URL` (e.g. KRAKEN_URL). */
const SOURCE_URL_DEFAULTS = {
  kraken: 'https://api.kraken.com',
  coinbase: 'https://api.coinbase.com',
  coingecko: 'https://api.coingecko.com',
  coindesk: 'https://data-api.coindesk.com',
} as const satisfies Record<Exclude<SourceName, 'simulated'>, string>;
type UrlSource = keyof typeof SOURCE_URL_DEFAULTS;
type UrlVariable<S extends UrlSource> = `${Uppercase<S>}_URL`;
const urlVariable = <S extends UrlSource>(source: S): UrlVariable<S> => `${source.toUpperCase()}_URL` as UrlVariable<S>;
const URL_SOURCES = Object.keys(SOURCE_URL_DEFAULTS) as UrlSource[];
const urlSchemas = Object.fromEntries(URL_SOURCES.map((s) => [urlVariable(s), url.default(SOURCE_URL_DEFAULTS[s])])) as {
  [S in UrlSource as UrlVariable<S>]: ReturnType<typeof url.default>;
};

/** Every variable the service reads, with its default. Nothing outside this file reads process.env. */
const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  PAIRS: pairs.default(['BTC-USD']),
  PRICE_SOURCES: sources.default(['kraken', 'coinbase', 'coingecko', 'coindesk']),
  POLL_INTERVAL_MS: int(100, 3_600_000).default(5000),
  SOURCE_TIMEOUT_MS: int(50, 60_000).default(3000),
  SOURCE_MAX_BODY_BYTES: int(1024, 10_000_000).default(262_144),
  SOURCE_BACKOFF_MAX_MS: int(100, 3_600_000).default(60_000),
  HISTORY_SIZE: int(1, 10_000_000).default(10_000),
  HISTORY_TTL_MS: int(1000, 30 * 24 * 3_600_000).default(3_600_000),
  CANDLE_RETENTION: duration.default(7 * 86_400_000),
  CANDLE_BACKFILL: z.enum(['on', 'off'], 'on or off').default('on'),
  // Coinbase Exchange (the candles' host), another host than the spot API of COINBASE_URL.
  COINBASE_EXCHANGE_URL: url.default('https://api.exchange.coinbase.com'),
  HEARTBEAT_INTERVAL_MS: int(100, 3_600_000).default(15_000),
  SSE_RETRY_MS: int(0, 3_600_000).default(2000),
  CLIENT_BUFFER_SIZE: int(1, 100_000).default(50),
  // 0: a slow subscriber is disconnected; else it is switched to conflated delivery at this interval.
  CONFLATE_SLOW_MS: int(0, CONFLATE_MAX_MS).default(0),
  STALE_AFTER_MS: int(100, 24 * 3_600_000).optional(),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(10_000),
  // After SIGTERM, readiness is down this long while everything keeps serving; then the shutdown.
  SHUTDOWN_DELAY_MS: int(0, 600_000).default(0),
  // Each stream ended by a shutdown is told to reconnect after its own delay, uniform in 250 ms..250 ms + this.
  SHUTDOWN_RETRY_SPREAD_MS: int(0, 60_000).default(1000),
  MAX_PAIRS_PER_REQUEST: int(1, 1000).default(50),
  // Unset: 19,000 per worker process (what one process holds under a 20,000-file limit).
  MAX_STREAM_CONNECTIONS: int(1, 1_000_000).optional(),
  MAX_STREAM_CONNECTIONS_PER_IP: int(1, 1_000_000).default(100),
  // A request's head (its request line and headers) must arrive within this, however it drips.
  REQUEST_HEAD_TIMEOUT_MS: int(1000, 120_000).default(10_000),
  SOCKET_EVENTS_PER_SECOND: int(1, 10_000).default(10),
  TRUST_PROXY: trustProxy.default(false),
  RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(600),
  ADMIN_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  REDIS_URL: z.string().trim().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').optional(),
  // Sentinel instead of REDIS_URL: the Sentinels, the name of the monitored primary, and secrets.
  REDIS_SENTINELS: sentinels.optional(),
  REDIS_SENTINEL_NAME: z.string().trim().regex(/^[A-Za-z0-9._-]{1,64}$/, 'the monitored primary\'s name (letters, digits, ._-), e.g. mymaster').optional(),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_TLS: flag.default(false),
  REDIS_PREFIX: z.string().trim().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'letters, digits and :_.- (at most 64)').default('price-stream'),
  LEADER_TTL_MS: int(500, 600_000).default(10_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  CORS_ORIGINS: list.default([]),
  COINDESK_API_KEY: z.string().trim().min(1).optional(),
  ...urlSchemas,
  SIMULATED_SEED: int(0, 2 ** 31 - 1).optional(),
  PRICE_MODE: z.enum(['failover', 'median'], 'failover or median').default('failover'),
  MAX_JUMP_PCT: decimal(0.1, 1000).default(10),
  JUMP_CONFIRMATIONS: int(1, 100).default(3),
  MAX_DEVIATION_PCT: decimal(0.01, 100).default(3),
  MIN_TICK_INTERVAL_MS: int(0, 3_600_000).default(0),
  KRAKEN_WS_URL: wsUrl.default('wss://ws.kraken.com/v2'),
  COINBASE_WS_URL: wsUrl.default('wss://ws-feed.exchange.coinbase.com'),
  PUSH_STALE_MS: int(100, 600_000).default(10_000),
  // A subscription the exchange neither acknowledges nor refuses within this: the connection is replaced (unset: PUSH_STALE_MS).
  PUSH_ACK_TIMEOUT_MS: int(100, 600_000).optional(),
  WORKERS: workers.default(1),
  // Listening sockets on PORT (SO_REUSEPORT, one process): Node accepts one connection per socket per event-loop turn.
  LISTEN_SOCKETS: int(1, 64).default(process.platform === 'linux' ? 8 : 1),
  // systemd's socket activation (sd_listen_fds(3)): listening sockets handed over as fds 3..; read only when LISTEN_PID is this process (loadConfig).
  LISTEN_FDS: int(1, 64).optional(),
  // Set by the primary in the environment of each worker it forks (1..WORKERS); not an operator's setting.
  WORKER_INDEX: int(1, 256).optional(),
  ...authSchema,
}).superRefine((p, ctx) => {
  const issue = (name: string, message: string) => ctx.addIssue({ code: 'custom', path: [name], message });
  checkAuth(p, issue);
  if (p.REDIS_SENTINELS) {
    if (p.REDIS_URL) issue('REDIS_URL', 'set either REDIS_URL or REDIS_SENTINELS, not both');
    if (!p.REDIS_SENTINEL_NAME) issue('REDIS_SENTINEL_NAME', 'required with REDIS_SENTINELS: the name the Sentinels monitor the primary under (sentinel monitor <name> …)');
    return;
  }
  const unused = (name: 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_PASSWORD' | 'REDIS_TLS', hint: string) => {
    if (p[name]) issue(name, `only used with REDIS_SENTINELS; ${hint}`);
  };
  unused('REDIS_SENTINEL_NAME', 'set REDIS_SENTINELS too');
  unused('REDIS_SENTINEL_PASSWORD', 'set REDIS_SENTINELS too');
  unused('REDIS_PASSWORD', 'with REDIS_URL the password goes in the URL (redis://:password@host:6379)');
  unused('REDIS_TLS', 'with REDIS_URL use a rediss:// URL for TLS');
});

type Parsed = z.output<typeof schema>;

/**
 * Where Redis is: one address (REDIS_URL), or a primary found and followed through Sentinel.
 * `tls`: TLS to the primary, its replicas and the Sentinels (Node's CA store, NODE_EXTRA_CA_CERTS).
 */
export type RedisTarget =
  | { kind: 'url'; url: string }
  | { kind: 'sentinel'; sentinels: readonly RedisNode[]; name: string; password: string | undefined; sentinelPassword: string | undefined; tls: boolean };

/** The validated configuration. Read once at start-up (or built by a test with loadConfig). */
export class AppConfig {
  readonly port: number;
  readonly host: string;
  readonly pairs: readonly string[];
  readonly pairSet: ReadonlySet<string>;
  readonly priceSources: readonly SourceName[];
  readonly pollIntervalMs: number;
  readonly sourceTimeoutMs: number;
  readonly sourceMaxBodyBytes: number;
  readonly sourceBackoffMaxMs: number;
  readonly historySize: number;
  readonly historyTtlMs: number;
  /** How long one-minute candles are kept per pair (CANDLE_RETENTION). */
  readonly candleRetentionMs: number;
  /** Whether the candle history is backfilled from the sources at start. */
  readonly candleBackfill: boolean;
  readonly coinbaseExchangeUrl: string;
  readonly heartbeatIntervalMs: number;
  readonly sseRetryMs: number;
  readonly clientBufferSize: number;
  readonly conflateSlowMs: number;
  readonly staleAfterMs: number;
  readonly shutdownTimeoutMs: number;
  readonly shutdownDelayMs: number;
  readonly shutdownRetrySpreadMs: number;
  readonly maxPairsPerRequest: number;
  readonly maxStreamConnections: number;
  readonly maxStreamConnectionsPerIp: number;
  readonly requestHeadTimeoutMs: number;
  readonly listenSockets: number;
  /**
   * Listening sockets the process was handed, by fd: 3, 4, ... (systemd's socket activation:
   * LISTEN_FDS of them, for this process when LISTEN_PID is its pid; sd_listen_fds(3)). It serves
   * them instead of binding PORT. Empty: none.
   */
  readonly inheritedFds: readonly number[];
  readonly socketEventsPerSecond: number;
  readonly trustProxy: TrustProxy;
  readonly rateLimitPerMinute: number;
  readonly adminToken: string | undefined;
  /** Set when the service shares its stream through Redis (REDIS_URL or REDIS_SENTINELS); null: memory only. */
  readonly redis: RedisTarget | null;
  readonly redisPrefix: string;
  readonly leaderTtlMs: number;
  readonly logLevel: Parsed['LOG_LEVEL'];
  readonly logFormat: Parsed['LOG_FORMAT'];
  readonly corsOrigins: readonly string[];
  readonly coindeskApiKey: string | undefined;
  readonly sourceUrls: Readonly<Record<UrlSource, string>>;
  readonly simulatedSeed: number;
  readonly priceMode: Parsed['PRICE_MODE'];
  readonly maxJumpPct: number;
  readonly jumpConfirmations: number;
  readonly maxDeviationPct: number;
  readonly minTickIntervalMs: number;
  /** The push feeds' URLs; null: that source polls only (`off`). */
  readonly pushUrls: Readonly<Record<'kraken' | 'coinbase', string | null>>;
  readonly pushStaleMs: number;
  readonly pushAckTimeoutMs: number;
  /** Worker processes on the one port; 1: the process serves alone. */
  readonly workers: number;
  /** This process' worker slot (1..workers) when a primary forked it; undefined otherwise. */
  readonly workerIndex: number | undefined;
  /** Subscriber tokens (AUTH_*); null: no key, every request is anonymous (as without the variables). */
  readonly auth: AuthConfig | null;

  constructor(p: Parsed) {
    this.port = p.PORT;
    this.host = p.HOST;
    this.pairs = p.PAIRS;
    this.pairSet = new Set(p.PAIRS);
    this.priceSources = p.PRICE_SOURCES;
    this.pollIntervalMs = p.POLL_INTERVAL_MS;
    this.sourceTimeoutMs = p.SOURCE_TIMEOUT_MS;
    this.sourceMaxBodyBytes = p.SOURCE_MAX_BODY_BYTES;
    this.sourceBackoffMaxMs = p.SOURCE_BACKOFF_MAX_MS;
    this.historySize = p.HISTORY_SIZE;
    this.historyTtlMs = p.HISTORY_TTL_MS;
    this.candleRetentionMs = p.CANDLE_RETENTION;
    this.candleBackfill = p.CANDLE_BACKFILL === 'on';
    this.coinbaseExchangeUrl = p.COINBASE_EXCHANGE_URL.replace(/\/+$/, '');
    this.heartbeatIntervalMs = p.HEARTBEAT_INTERVAL_MS;
    this.sseRetryMs = p.SSE_RETRY_MS;
    this.clientBufferSize = p.CLIENT_BUFFER_SIZE;
    this.conflateSlowMs = p.CONFLATE_SLOW_MS;
    // Three missed polls (and at least 30 s) before a price counts as stale, unless set.
    this.staleAfterMs = p.STALE_AFTER_MS ?? Math.max(30_000, 3 * p.POLL_INTERVAL_MS);
    this.shutdownTimeoutMs = p.SHUTDOWN_TIMEOUT_MS;
    this.shutdownDelayMs = p.SHUTDOWN_DELAY_MS;
    this.shutdownRetrySpreadMs = p.SHUTDOWN_RETRY_SPREAD_MS;
    this.maxPairsPerRequest = p.MAX_PAIRS_PER_REQUEST;
    this.maxStreamConnections = p.MAX_STREAM_CONNECTIONS ?? 19_000 * p.WORKERS;
    this.maxStreamConnectionsPerIp = p.MAX_STREAM_CONNECTIONS_PER_IP;
    this.requestHeadTimeoutMs = p.REQUEST_HEAD_TIMEOUT_MS;
    this.socketEventsPerSecond = p.SOCKET_EVENTS_PER_SECOND;
    this.trustProxy = p.TRUST_PROXY;
    this.rateLimitPerMinute = p.RATE_LIMIT_PER_MINUTE;
    this.adminToken = p.ADMIN_TOKEN;
    this.redis = p.REDIS_SENTINELS
      ? { kind: 'sentinel', sentinels: p.REDIS_SENTINELS, name: p.REDIS_SENTINEL_NAME!, password: p.REDIS_PASSWORD, sentinelPassword: p.REDIS_SENTINEL_PASSWORD, tls: p.REDIS_TLS }
      : p.REDIS_URL
        ? { kind: 'url', url: p.REDIS_URL }
        : null;
    this.redisPrefix = p.REDIS_PREFIX;
    this.leaderTtlMs = p.LEADER_TTL_MS;
    this.logLevel = p.LOG_LEVEL;
    this.logFormat = p.LOG_FORMAT;
    this.corsOrigins = p.CORS_ORIGINS;
    this.coindeskApiKey = p.COINDESK_API_KEY;
    this.sourceUrls = Object.fromEntries(URL_SOURCES.map((s) => [s, p[urlVariable(s)]])) as Record<UrlSource, string>;
    // A fresh walk on every start unless a run is to be replayed (the seed is in the start-up log).
    this.simulatedSeed = p.SIMULATED_SEED ?? randomInt(0, 2 ** 31 - 1);
    this.priceMode = p.PRICE_MODE;
    this.maxJumpPct = p.MAX_JUMP_PCT;
    this.jumpConfirmations = p.JUMP_CONFIRMATIONS;
    this.maxDeviationPct = p.MAX_DEVIATION_PCT;
    this.minTickIntervalMs = p.MIN_TICK_INTERVAL_MS;
    this.pushUrls = { kraken: p.KRAKEN_WS_URL, coinbase: p.COINBASE_WS_URL };
    this.pushStaleMs = p.PUSH_STALE_MS;
    this.pushAckTimeoutMs = p.PUSH_ACK_TIMEOUT_MS ?? p.PUSH_STALE_MS;
    this.workers = p.WORKERS;
    this.listenSockets = p.LISTEN_SOCKETS;
    // SD_LISTEN_FDS_START: the first is fd 3.
    this.inheritedFds = Array.from({ length: p.LISTEN_FDS ?? 0 }, (_, i) => 3 + i);
    this.workerIndex = p.WORKER_INDEX;
    this.auth = authConfig(p);
  }
}

export class ConfigError extends Error {}

/**
 * Validates the environment. Empty strings count as unset. Throws a ConfigError whose message
 * names every bad variable and the form it accepts.
 */
export function loadConfig(env: Record<string, string | undefined>, pid = process.pid): AppConfig {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== '') input[key] = v;
  }
  // sd_listen_fds(3): sockets handed to another process (LISTEN_PID not this one's, or unset) are not read at all.
  if (env.LISTEN_PID?.trim() !== String(pid)) delete input.LISTEN_FDS;
  const result = schema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const name = String(i.path[0] ?? '?');
      // A signing secret is never repeated, even a bad one (the message reaches the logs).
      const shown = name === 'AUTH_JWT_SECRET' ? '[redacted]' : JSON.stringify(input[name] ?? '');
      return `  ${name}=${shown}: ${i.message}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const config = new AppConfig(result.data);
  if (config.inheritedFds.length > 0 && config.workers > 1) {
    throw new ConfigError(
      `Invalid configuration:\n  LISTEN_FDS=${JSON.stringify(input.LISTEN_FDS)}: inherited listening sockets are served by one process (WORKERS=1); WORKERS=${config.workers} binds PORT itself`,
    );
  }
  return config;
}
