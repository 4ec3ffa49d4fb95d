import type { FrameKind } from '../sse/sse-frames';
import { LEGACY_PAIR, LEGACY_WS_PATH, SSE_PATH, WS_PATH } from '../shared/wire';

/**
 * What the edge router (edge-router.ts) does with a request before Express sees it:
 * - `stream`: a GET that opens a long-lived response (SSE), served without Express, helmet or the
 *   request log (a stream logs its own refusal and close);
 * - `rest`: a GET answered at once from a body the handler builds, with everything Express would
 *   add (request id and access line, helmet, CORS, the rate limit, ETag and 304); the handler may
 *   decline a request, which Express then answers;
 * - `upgrade`: an HTTP upgrade the handler takes over (its socket owned by socket-guard.ts).
 */
export type EdgeKind = 'stream' | 'rest' | 'upgrade';

/**
 * The controller method whose rate-limit budget a fast route shares (ThrottlerGuard keys by class
 * and handler name). Names, not the classes, so that this table imports no controller
 * (edge-routes.spec.ts checks each names a method whose route is the row's template).
 */
export type RateLimitKey = { readonly controller: string; readonly method: string };

export type EdgeRoute = {
  readonly kind: EdgeKind;
  /** The path; with `prefix` every path that starts with it, e.g. `/api/prices/` + one segment (`:pair`). */
  readonly path: string;
  readonly match: 'exact' | 'segment' | 'prefix';
  /** Which handler serves it (registered with EdgeRouter.serve by the module that owns it). */
  readonly handler: string;
  /** The route template for the request-duration metric (the Express route's path). */
  readonly template: string;
  readonly rateLimit?: RateLimitKey;
  /** A stream's frames, and its pair when the request names none. */
  readonly sse?: SseRoute;
  /** Upgrades: only `Upgrade: websocket` (others are served as plain requests), or any. */
  readonly websocketOnly?: boolean;
};

/** What a stream route serves: its frame kind, and the pair when the request names none. */
export type SseRoute = { kind: FrameKind; defaultPair?: string };

/** The legacy routes (Bitcoin Price Streamer): named `price` events, and unnamed ones for `onmessage`; both with `symbol` and `name`, BTC-USD unless `pairs` says otherwise. */
export const LEGACY_PRICE_STREAM_PATH = '/api/price/stream';
export const LEGACY_MESSAGE_STREAM_PATH = '/stream';
/** engine.io's request path (its default); its requests and upgrades are engine.io's own. */
export const SOCKET_IO_PATH = '/socket.io/';

const rest = <H extends string>(path: string, handler: H, controller: string, method: string, match: 'exact' | 'segment' = 'exact') =>
  ({ kind: 'rest', path, match, handler, template: match === 'segment' ? `${path}:pair` : path, rateLimit: { controller, method } }) as const;
const stream = (path: string, sse: SseRoute) => ({ kind: 'stream', path, match: 'exact', handler: 'sse', template: path, sse }) as const;

/**
 * Every route served ahead of Express: the one list the edge router, the controllers, the request
 * log and the security headers read. A new fast REST route is a row here and its handler
 * (EdgeRouter.serve); the controller route of the same path stays for OpenAPI and for what the
 * handler declines.
 */
export const EDGE_ROUTES = [
  stream(SSE_PATH, { kind: 'price' }),
  stream(LEGACY_PRICE_STREAM_PATH, { kind: 'legacy', defaultPair: LEGACY_PAIR }),
  stream(LEGACY_MESSAGE_STREAM_PATH, { kind: 'message', defaultPair: LEGACY_PAIR }),
  rest('/api/prices/', 'latest', 'PricesController', 'one', 'segment'),
  rest('/api/price/current', 'legacyCurrent', 'LegacyController', 'current'),
  rest('/api/prices', 'prices', 'PricesController', 'list'),
  rest('/api/v1/ltp', 'ltp', 'LegacyController', 'ltp'),
  { kind: 'upgrade', path: WS_PATH, match: 'exact', handler: 'websocket', template: WS_PATH, websocketOnly: true },
  { kind: 'upgrade', path: LEGACY_WS_PATH, match: 'exact', handler: 'websocket', template: LEGACY_WS_PATH, websocketOnly: true },
  { kind: 'upgrade', path: SOCKET_IO_PATH, match: 'prefix', handler: 'engine.io', template: SOCKET_IO_PATH },
] as const satisfies readonly EdgeRoute[];

type Row = (typeof EDGE_ROUTES)[number];
/** The handler names of one kind: what EdgeRouter.serve accepts for it. */
export type EdgeHandlerName<K extends EdgeKind> = Extract<Row, { kind: K }>['handler'];

const exact = new Map<string, EdgeRoute>();
const byPrefix: EdgeRoute[] = [];
for (const route of EDGE_ROUTES as readonly EdgeRoute[]) {
  if (route.match === 'exact') exact.set(`${route.kind === 'upgrade' ? 'upgrade' : 'request'} ${route.path}`, route);
  else byPrefix.push(route);
}

/** The row a request path (no query) falls under: exact paths first, then one `:pair` segment or a prefix. */
export function edgeRoute(path: string, upgrade: boolean): EdgeRoute | undefined {
  const found = exact.get(`${upgrade ? 'upgrade' : 'request'} ${path}`);
  if (found) return found;
  for (const route of byPrefix) {
    if ((route.kind === 'upgrade') !== upgrade || !path.startsWith(route.path)) continue;
    if (route.match === 'prefix') return route;
    const rest = path.length - route.path.length;
    if (rest > 0 && path.indexOf('/', route.path.length) === -1) return route;
  }
  return undefined;
}

/** The stream routes' paths (the request log and helmet leave them out). */
export const STREAM_PATHS: ReadonlySet<string> = new Set(EDGE_ROUTES.filter((r) => r.kind === 'stream').map((r) => r.path));

/** A stream route's row by its path (the SSE controller serves the same routes through Express). */
export function streamRoute(path: string): SseRoute {
  const route = exact.get(`request ${path}`);
  if (route?.sse === undefined) throw new Error(`${path} is not a stream route`);
  return route.sse;
}
