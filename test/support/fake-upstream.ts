import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'http';
import type { AddressInfo } from 'net';
import { fixtureJson } from './fixtures';

export type UpstreamName = 'kraken' | 'coinbase' | 'coingecko' | 'coindesk' | HistoryName;
/** The one-minute candle endpoints the candle backfill reads (Kraken OHLC, Coinbase Exchange candles). */
export type HistoryName = 'kraken_ohlc' | 'coinbase_exchange';

/**
 * How an upstream misbehaves:
 * - `http_500`: 500 with a JSON body;
 * - `rate_limited`: 429 with a JSON body and `Retry-After` (seconds, see `retryAfter`);
 * - `hang`: never answers (the request runs into the client's timeout);
 * - `garbage`: 200 with an HTML body;
 * - `nan_price` / `zero_price`: the usual shape with the price `"NaN"` / zero;
 * - `huge_price` / `tiny_price`: the usual shape with the price `1e308` / `1e-300`;
 * - `half_price`: the usual shape with the price 50 % below the others' (a bad venue);
 * - `wrong_pair`: the answer is for another pair (Kraken: only an `XETHZUSD` entry; Coinbase:
 *   `base` ETH; CoinGecko: only an `ethereum` entry; CoinDesk: only an `ETH-USD` instrument),
 *   with that pair's price (3000.5);
 * - `stale`: the upstream's own time is `staleBySeconds` old (CoinGecko `last_updated_at`,
 *   CoinDesk `VALUE_LAST_UPDATE_TS`; Kraken and Coinbase give none, so they answer as usual);
 * - `too_large`: 200 with a valid JSON body of `largeBodyBytes`, chunked (no Content-Length).
 */
export type FailureMode =
  | 'http_500'
  | 'rate_limited'
  | 'hang'
  | 'garbage'
  | 'nan_price'
  | 'zero_price'
  | 'huge_price'
  | 'tiny_price'
  | 'half_price'
  | 'wrong_pair'
  | 'stale'
  | 'too_large';

export type FailOptions = {
  /** Only the next n requests to that upstream fail; then it serves again. Default: until `recover`. */
  times?: number;
  /** The Retry-After header of `rate_limited`: seconds or an HTTP date. Default "30". */
  retryAfter?: string;
  /** How old `stale` prices are. Default two hours. */
  staleBySeconds?: number;
};

export type FakeUpstreamOptions = {
  /** Initial prices by pair; default BTC-USD 97000.5, ETH-USD 3500.25, BTC-EUR 90000.75. */
  prices?: Record<string, number>;
  /** When set, CoinDesk answers 401 unless `Authorization: Apikey <apiKey>`. */
  coindeskApiKey?: string;
  /** Size of the `too_large` body. Default 1 MiB. */
  largeBodyBytes?: number;
};

/** The `<SOURCE>_URL` variables that point every source at this fake, and the push feeds off (see FakePushServer). */
export type FakeUpstreamEnv = {
  KRAKEN_URL: string;
  COINBASE_URL: string;
  COINGECKO_URL: string;
  COINDESK_URL: string;
  COINBASE_EXCHANGE_URL: string;
  KRAKEN_WS_URL: string;
  COINBASE_WS_URL: string;
};

export type RecordedRequest = { upstream: UpstreamName; path: string; query: URLSearchParams; headers: IncomingMessage['headers'] };

type Failure = { mode: FailureMode; remaining: number; retryAfter: string; staleBySeconds: number };

/** The price `wrong_pair` answers with: about what ETH traded at. */
const WRONG_PAIR_PRICE = 3000.5;
type Reply = { status: number; body: unknown; headers?: Record<string, string> };

const KRAKEN_ASSETS: Record<string, string> = { BTC: 'XBT', DOGE: 'XDG' };
const COINGECKO_BASES: Record<string, string> = { bitcoin: 'BTC', ethereum: 'ETH', solana: 'SOL', ripple: 'XRP', dogecoin: 'DOGE' };

/** The fixture entries each answer is built from, so the fake speaks the upstreams' real shapes. */
const TEMPLATES = {
  kraken: entryOf(fixtureJson('kraken_rest_ticker.json'), ['result', 'XXBTZUSD']),
  krakenOhlc: entryOf(fixtureJson('kraken_rest_ohlc.json'), ['result', 'XXBTZUSD']) as unknown as unknown[][],
  coinbaseCandles: fixtureJson('coinbase_exchange_candles.json') as unknown[][],
  coinbase: entryOf(fixtureJson('coinbase_spot.json'), ['data']),
  coingecko: entryOf(fixtureJson('coingecko_simple_price.json'), ['bitcoin']),
  coindesk: entryOf(fixtureJson('coindesk_index_tick_head.json'), ['Data', 'BTC-USD']),
};

function entryOf(json: unknown, keys: string[]): Record<string, unknown> {
  let node = json;
  for (const key of keys) node = (node as Record<string, unknown>)[key];
  return structuredClone(node) as Record<string, unknown>;
}

/**
 * A real HTTP server on 127.0.0.1 (random port) that answers like Kraken, Coinbase, CoinGecko
 * and CoinDesk on their own paths, with prices a test can move and failures it can switch on
 * per upstream. Counts requests per path. For e2e tests, start the app with `fake.env()`.
 *
 * ```ts
 * const fake = await FakeUpstream.start();
 * const app = await startApp({ ...fake.env(), PRICE_SOURCES: 'kraken,coinbase' });
 * fake.fail('kraken', 'http_500');
 * fake.setPrice('BTC-USD', 98000);
 * expect(fake.requestCount('coinbase')).toBeGreaterThan(0);
 * await fake.close();
 * ```
 */
export class FakeUpstream {
  private readonly prices = new Map<string, number>();
  private readonly failures = new Map<UpstreamName, Failure>();
  private readonly counts = new Map<string, number>();
  private readonly recorded: RecordedRequest[] = [];
  /** The `last_updated_at` / `VALUE_LAST_UPDATE_TS` the fake reports, in Unix seconds; unset: now. */
  lastUpdatedAt: number | undefined;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly options: FakeUpstreamOptions,
  ) {
    for (const [pair, price] of Object.entries(options.prices ?? { 'BTC-USD': 97000.5, 'ETH-USD': 3500.25, 'BTC-EUR': 90000.75 })) {
      this.prices.set(pair, price);
    }
  }

  static async start(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
    const ref: { fake?: FakeUpstream } = {};
    const server = createServer((req, res) => ref.fake?.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    ref.fake = new FakeUpstream(server, `http://127.0.0.1:${port}`, options);
    return ref.fake;
  }

  env(): FakeUpstreamEnv {
    return {
      KRAKEN_URL: this.url,
      COINBASE_URL: this.url,
      COINGECKO_URL: this.url,
      COINDESK_URL: this.url,
      COINBASE_EXCHANGE_URL: this.url,
      KRAKEN_WS_URL: 'off',
      COINBASE_WS_URL: 'off',
    };
  }

  /** Sets a pair's price on every upstream (any number, so tests can serve odd ones). */
  setPrice(pair: string, price: number): void {
    this.prices.set(pair, price);
  }

  /** Every upstream stops listing the pair (Kraken: unknown asset pair; Coinbase: 404; ...). */
  removePair(pair: string): void {
    this.prices.delete(pair);
  }

  fail(upstream: UpstreamName, mode: FailureMode, options: FailOptions = {}): void {
    this.failures.set(upstream, {
      mode,
      remaining: options.times ?? Infinity,
      retryAfter: options.retryAfter ?? '30',
      staleBySeconds: options.staleBySeconds ?? 2 * 3600,
    });
  }

  recover(upstream?: UpstreamName): void {
    if (upstream) this.failures.delete(upstream);
    else this.failures.clear();
  }

  /** Requests served on one path (without the query), e.g. `/0/public/Ticker`. */
  requestsOn(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  requestCount(upstream: UpstreamName): number {
    return this.recorded.filter((r) => r.upstream === upstream).length;
  }

  requests(upstream?: UpstreamName): readonly RecordedRequest[] {
    return upstream ? this.recorded.filter((r) => r.upstream === upstream) : [...this.recorded];
  }

  resetCounts(): void {
    this.counts.clear();
    this.recorded.length = 0;
  }

  /** Closes the server, cutting the requests it was told to hang. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.counts.set(url.pathname, (this.counts.get(url.pathname) ?? 0) + 1);
    const upstream = upstreamOf(url.pathname);
    if (!upstream || req.method !== 'GET') {
      send(res, { status: 404, body: { error: 'not found' } });
      return;
    }
    this.recorded.push({ upstream, path: url.pathname, query: url.searchParams, headers: req.headers });

    const failure = this.takeFailure(upstream);
    switch (failure?.mode) {
      case 'hang':
        return; // the socket stays open until the client gives up or close() cuts it
      case 'http_500':
        return send(res, { status: 500, body: { error: 'internal server error' } });
      case 'rate_limited':
        return send(res, { status: 429, headers: { 'retry-after': failure.retryAfter }, body: { error: 'Too Many Requests', status: 429 } });
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>502 Bad Gateway</body></html>');
        return;
      case 'too_large':
        return this.sendLarge(res);
    }
    const asString = upstream === 'kraken' || upstream === 'coinbase';
    const price = (pair: string): unknown => {
      const p = this.prices.get(pair) ?? NaN;
      const value = (() => {
        switch (failure?.mode) {
          case 'nan_price':
            return 'NaN';
          case 'zero_price':
            return 0;
          case 'huge_price':
            return 1e308;
          case 'tiny_price':
            return 1e-300;
          case 'half_price':
            return p / 2;
          case 'wrong_pair':
            return WRONG_PAIR_PRICE;
          default:
            return p;
        }
      })();
      return asString ? String(value) : value;
    };
    const nowSeconds = Math.floor(Date.now() / 1000);
    const updatedAt = failure?.mode === 'stale' ? nowSeconds - failure.staleBySeconds : (this.lastUpdatedAt ?? nowSeconds);
    send(res, this.answer(upstream, url, req, price, updatedAt, failure?.mode === 'wrong_pair'));
  }

  private answer(upstream: UpstreamName, url: URL, req: IncomingMessage, price: (pair: string) => unknown, updatedAt: number, wrongPair: boolean): Reply {
    const q = url.searchParams;
    switch (upstream) {
      case 'kraken': {
        const result: Record<string, unknown> = {};
        for (const alt of (q.get('pair') ?? '').split(',')) {
          const pair = [...this.prices.keys()].find((p) => krakenAltname(p) === alt);
          if (!pair) return { status: 200, body: { error: ['EQuery:Unknown asset pair'] } };
          const entry = structuredClone(TEMPLATES.kraken);
          entry.c = [price(pair), '0.00112355'];
          result[wrongPair ? 'XETHZUSD' : krakenResultKey(pair)] = entry;
        }
        return { status: 200, body: { error: [], result } };
      }
      case 'coinbase': {
        const pair = decodeURIComponent(url.pathname.split('/')[3] ?? '');
        if (!this.prices.has(pair)) return { status: 404, body: { errors: [{ id: 'not_found', message: 'Invalid currency' }] } };
        const [base, currency] = pair.split('-');
        return { status: 200, body: { data: { ...TEMPLATES.coinbase, amount: price(pair), base: wrongPair ? 'ETH' : base, currency } } };
      }
      case 'coingecko': {
        const body: Record<string, Record<string, unknown>> = {};
        for (const id of (q.get('ids') ?? '').split(',')) {
          for (const vs of (q.get('vs_currencies') ?? '').split(',')) {
            const pair = `${COINGECKO_BASES[id] ?? '?'}-${vs.toUpperCase()}`;
            if (!this.prices.has(pair)) continue;
            const key = wrongPair ? 'ethereum' : id;
            body[key] ??= { last_updated_at: updatedAt };
            body[key][vs] = price(pair);
            // The fixture's 24 h fields (given in USD); the fake gives them for every currency.
            if (q.get('include_24hr_vol') === 'true') body[key][`${vs}_24h_vol`] = TEMPLATES.coingecko.usd_24h_vol;
            if (q.get('include_24hr_change') === 'true') body[key][`${vs}_24h_change`] = TEMPLATES.coingecko.usd_24h_change;
          }
        }
        return { status: 200, body };
      }
      case 'kraken_ohlc': {
        const alt = q.get('pair') ?? '';
        const pair = [...this.prices.keys()].find((p) => krakenAltname(p) === alt);
        if (!pair) return { status: 200, body: { error: ['EQuery:Unknown asset pair'] } };
        const rows = this.minutes(pair, 720, price).map(([t, o, h, l, c], i) => {
          // The fixture's shape: prices as strings, vwap, volume, count; every 97th minute without trades (count 0).
          const row = structuredClone(TEMPLATES.krakenOhlc[i % TEMPLATES.krakenOhlc.length]);
          row.splice(0, 5, t, String(o), String(h), String(l), String(c));
          row[7] = i % 97 === 50 ? 0 : 1 + (i % 40);
          return row;
        });
        return { status: 200, body: { error: [], result: { [wrongPair ? 'XETHZUSD' : krakenResultKey(pair)]: rows, last: rows.at(-2)?.[0] } } };
      }
      case 'coinbase_exchange': {
        const pair = decodeURIComponent(url.pathname.split('/')[2] ?? '');
        if (!this.prices.has(pair)) return { status: 404, body: { message: 'NotFound' } };
        const start = Date.parse(q.get('start') ?? '');
        const end = Date.parse(q.get('end') ?? '');
        if (q.get('granularity') !== '60' || !(end >= start) || end - start > 300 * 60_000) return { status: 400, body: { message: 'invalid start/end/granularity' } };
        const all = this.minutes(pair, 24 * 60 + 1, price);
        const rows = all
          .filter(([t]) => t * 1000 >= start && t * 1000 <= end)
          .reverse()
          .map(([t, o, h, l, c]) => [t, l, h, o, c, TEMPLATES.coinbaseCandles[0][5]]);
        return { status: 200, body: rows };
      }
      case 'coindesk': {
        if (this.options.coindeskApiKey !== undefined && req.headers.authorization !== `Apikey ${this.options.coindeskApiKey}`) {
          return { status: 401, body: { Data: {}, Err: { type: 1, message: 'You need a valid auth key or auth token to access this endpoint' } } };
        }
        const Data: Record<string, unknown> = {};
        const missing: string[] = [];
        for (const instrument of (q.get('instruments') ?? '').split(',')) {
          if (!this.prices.has(instrument)) missing.push(instrument);
          else {
            const key = wrongPair ? 'ETH-USD' : instrument;
            Data[key] = { ...TEMPLATES.coindesk, INSTRUMENT: key, VALUE: price(instrument), VALUE_LAST_UPDATE_TS: updatedAt };
          }
        }
        const Err =
          missing.length > 0 ? { type: 2, message: 'Not found: market / instrument pairs', other_info: { param: 'instruments', values: missing } } : {};
        return { status: 200, body: { Data, Err } };
      }
    }
  }

  /**
   * `count` one-minute candles `[time (s), open, high, low, close]` up to the current (open)
   * minute, oldest first: a gentle wave around the pair's price, ending at it.
   */
  private minutes(pair: string, count: number, price: (pair: string) => unknown): [number, number, number, number, number][] {
    const last = Number(price(pair));
    const open = Math.floor(Date.now() / 60_000) * 60;
    const at = (i: number) => last * (1 + 0.002 * Math.sin(i / 30));
    const out: [number, number, number, number, number][] = [];
    for (let i = count - 1; i >= 0; i--) {
      const o = at(i + 1);
      const c = i === 0 ? last : at(i);
      out.push([open - i * 60, o, Math.max(o, c) * 1.0001, Math.min(o, c) * 0.9999, c]);
    }
    return out;
  }

  private takeFailure(upstream: UpstreamName): Failure | undefined {
    const failure = this.failures.get(upstream);
    if (!failure) return undefined;
    if (--failure.remaining <= 0) this.failures.delete(upstream);
    return failure;
  }

  private sendLarge(res: ServerResponse): void {
    const total = this.options.largeBodyBytes ?? 1024 * 1024;
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no Content-Length to go by
    res.write('{"padding":"');
    const chunk = 'x'.repeat(16 * 1024);
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end('"}');
    };
    res.on('error', () => undefined); // the client hangs up midway, as it should
    pump();
  }
}

function upstreamOf(path: string): UpstreamName | undefined {
  if (path === '/0/public/Ticker') return 'kraken';
  if (/^\/v2\/prices\/[^/]+\/spot$/.test(path)) return 'coinbase';
  if (path === '/api/v3/simple/price') return 'coingecko';
  if (path === '/index/cc/v1/latest/tick') return 'coindesk';
  if (path === '/0/public/OHLC') return 'kraken_ohlc';
  if (/^\/products\/[^/]+\/candles$/.test(path)) return 'coinbase_exchange';
  return undefined;
}

function krakenAltname(pair: string): string {
  const [base, quote] = pair.split('-');
  return `${KRAKEN_ASSETS[base] ?? base}${KRAKEN_ASSETS[quote] ?? quote}`;
}

/** Kraken answers its older assets under X/Z-prefixed names (XXBTZUSD), newer ones under the altname. */
function krakenResultKey(pair: string): string {
  const [base, quote] = pair.split('-');
  const b = KRAKEN_ASSETS[base] ?? base;
  const legacy = ['XBT', 'ETH', 'LTC', 'XRP'];
  return legacy.includes(b) && ['USD', 'EUR'].includes(quote) ? `X${b}Z${quote}` : krakenAltname(pair);
}

function send(res: ServerResponse, reply: Reply): void {
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...reply.headers });
  res.end(body);
}
