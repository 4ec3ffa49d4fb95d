import { applyDecorators } from '@nestjs/common';
import type { DocumentBuilder, OpenAPIObject, SchemaObject } from '@nestjs/swagger';
import type { ReferenceObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { SOURCE_NAMES, TICK_SOURCES, type ErrorCode } from '../shared/wire';
import { ApiResponse } from './api-docs';

/** OpenAPI schemas of the wire types in src/shared/wire.ts (kept beside each other on purpose). */
export const TickSchema: SchemaObject & { properties: Record<string, SchemaObject> } = {
  type: 'object',
  required: ['id', 'pair', 'price', 'timestamp', 'source'],
  properties: {
    id: { type: 'string', example: '1763758800123-0', description: '<milliseconds>-<sequence>, strictly increasing; opaque to clients' },
    pair: { type: 'string', example: 'BTC-USD' },
    price: { type: 'number', example: 97123.45, minimum: 0, exclusiveMinimum: true },
    timestamp: { type: 'string', format: 'date-time', description: 'when this service retrieved the price' },
    sourceTimestamp: { type: 'string', format: 'date-time', description: "the upstream's own time, when it gives one" },
    source: { type: 'string', enum: [...TICK_SOURCES], description: 'the upstream, or `composite` (PRICE_MODE=median) with `sources` listed' },
    sources: { type: 'array', items: { type: 'string', enum: [...SOURCE_NAMES] }, description: 'with `source: composite`: the upstreams whose prices made it' },
    bid: { type: 'number', example: 97123.4, description: 'best bid, where the upstream gives it (Kraken; Coinbase push feed)' },
    ask: { type: 'number', example: 97123.5, description: 'best ask, where the upstream gives it (Kraken; Coinbase push feed)' },
    open24h: { type: 'number', description: 'price 24 h ago (Kraken REST: open of the UTC day; CoinGecko, CoinDesk: from their 24 h change)' },
    high24h: { type: 'number', description: '24 h high (Kraken; Coinbase push feed)' },
    low24h: { type: 'number', description: '24 h low (Kraken; Coinbase push feed)' },
    volume24h: { type: 'number', description: '24 h volume in the base asset (Kraken; CoinGecko: its quote volume divided by the price)' },
  },
};

export const CandleSchema: SchemaObject = {
  type: 'object',
  required: ['time', 'open', 'high', 'low', 'close', 'ticks', 'first', 'last', 'source', 'closed'],
  properties: {
    time: { type: 'string', format: 'date-time', description: 'start of the candle (UTC)' },
    open: { type: 'number' },
    high: { type: 'number' },
    low: { type: 'number' },
    close: { type: 'number' },
    ticks: { type: 'integer', minimum: 0, description: 'how many of our ticks made it (0 for backfilled minutes)' },
    first: { type: 'string', format: 'date-time', nullable: true, description: 'time of the first of our ticks in it' },
    last: { type: 'string', format: 'date-time', nullable: true, description: 'time of the last of our ticks in it' },
    source: { type: 'string', enum: ['live', 'kraken', 'coinbase', 'simulated', 'mixed'], description: 'live ticks, the exchange a backfill read, simulated history, or mixed' },
    closed: { type: 'boolean', description: 'false for the candle still open' },
  },
};

export const ErrorSchema: SchemaObject = {
  type: 'object',
  required: ['statusCode', 'code', 'message'],
  properties: { statusCode: { type: 'integer' }, code: { type: 'string', example: 'INVALID_PAIR' }, message: { type: 'string' } },
};

export const PairErrorSchema: SchemaObject = {
  type: 'object',
  properties: { pair: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
};

export const ResetSchema: SchemaObject = {
  type: 'object',
  required: ['reason', 'oldestId', 'oldestTimestamp'],
  description: 'The resume point is no longer in the window: the ticks in between are gone. The client drops what it knows and takes what follows (docs/api.md, "Resume").',
  properties: {
    reason: { type: 'string', enum: ['history_gap'] },
    oldestId: { type: 'string', nullable: true, description: 'the oldest id still in the window (null when it is empty)' },
    oldestTimestamp: { type: 'string', format: 'date-time', nullable: true },
  },
};

/**
 * One event of an SSE stream, as the fields of its frame (OpenAPI 3.0 cannot type the events of a
 * text/event-stream; the streams' 200 responses are arrays of these). `message` is the event of
 * a frame without `event:` (the legacy /stream route's ticks).
 */
function sseEvent(events: string[], tick: string): SchemaObject {
  return {
    type: 'object',
    required: ['event', 'data'],
    properties: {
      event: { type: 'string', enum: events, description: 'the `event:` field (`reset` on a history gap, `status` when a pair goes stale or is fresh again)' },
      id: { type: 'string', description: 'the `id:` field: the tick id, on every tick event; a client resumes from the last one' },
      data: {
        oneOf: [{ $ref: `#/components/schemas/${tick}` }, { $ref: '#/components/schemas/Reset' }, { $ref: '#/components/schemas/PairStatus' }],
        description: 'the `data:` field: a tick, a Reset, or a PairStatus',
      },
    },
  };
}

/** The document's reusable schemas: every route refers to these by `schemaRef`. */
const COMPONENT_SCHEMAS = {
  Tick: TickSchema,
  LegacyTick: {
    allOf: [{ $ref: '#/components/schemas/Tick' }, { type: 'object', properties: { symbol: { type: 'string', example: 'BTC' }, name: { type: 'string', example: 'Bitcoin' } } }],
  },
  Candle: CandleSchema,
  Reset: ResetSchema,
  PairStatus: {
    type: 'object',
    description: "a pair's price went stale (no fresh price for STALE_AFTER_MS) or is fresh again",
    required: ['pair', 'state', 'since'],
    properties: {
      pair: { type: 'string', example: 'BTC-USD' },
      state: { type: 'string', enum: ['stale', 'fresh'] },
      since: { type: 'string', format: 'date-time', description: 'stale: when its last fresh price came; fresh: when a fresh one came back' },
    },
  },
  Error: ErrorSchema,
  PairError: PairErrorSchema,
  SseEvent: sseEvent(['price', 'reset', 'status'], 'Tick'),
  LegacySseEvent: sseEvent(['price', 'message', 'reset', 'status'], 'LegacyTick'),
  LtpItem: { type: 'object', required: ['pair', 'amount'], properties: { pair: { type: 'string', example: 'BTC/USD' }, amount: { type: 'number' } } },
} satisfies Record<string, SchemaObject>;

export type ComponentName = keyof typeof COMPONENT_SCHEMAS;

/** A reference to one of the document's component schemas. */
export function schemaRef(name: ComponentName): ReferenceObject {
  return { $ref: `#/components/schemas/${name}` };
}

/** The admin token (ADMIN_TOKEN): a plain shared string sent as a bearer token, not a JWT. */
export const ADMIN_AUTH = 'admin-token';

/** The document's frame: title, server, licence and the admin token's scheme (`Builder`: @nestjs/swagger's, loaded when the document is first asked for). */
export function documentConfig(Builder: typeof DocumentBuilder, version: string): Omit<OpenAPIObject, 'paths'> {
  return new Builder()
    .setTitle('price-stream')
    .setDescription(
      'Live crypto prices with gapless resume. REST below; the SSE routes are described here with their event types; WebSocket and Socket.IO messages are in docs/api.md.',
    )
    .setVersion(version)
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer('/', 'The service that serves this document')
    .addSecurity(ADMIN_AUTH, { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN (a plain string of at least 16 characters) as `Authorization: Bearer <token>`' })
    .build();
}

/**
 * Completes the document Nest built: the component schemas the routes refer to, and an explicit
 * `security: []` on every route that needs no credential (a linter cannot tell a public route
 * from a forgotten declaration otherwise).
 */
export function finishDocument(document: OpenAPIObject): OpenAPIObject {
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...COMPONENT_SCHEMAS } };
  for (const item of Object.values(document.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const) {
      const operation = item[method];
      if (operation && !operation.security) operation.security = [];
    }
  }
  return document;
}

/** Every route under the REST rate limit may answer it. */const RATE_LIMITED = ApiResponse({ status: 429, description: 'RATE_LIMITED (with Retry-After)', content: { 'application/json': { schema: schemaRef('Error') } } });

/** Error answers of a route: a status and the codes it may come with. */
type ErrorList = [status: number, ...codes: ErrorCode[]][];

/** What a subscriber token (AUTH_*) may be refused with: the same on every route that checks one. */
const TOKEN_ERRORS: ErrorList = [
  [401, 'UNAUTHORIZED', 'TOKEN_EXPIRED'],
  [403, 'PAIR_NOT_ENTITLED'],
  [503, 'AUTH_UNAVAILABLE'],
];

/** When a route checks subscriber tokens (the note beside TOKEN_ERRORS' codes). */
const TOKEN_NOTE = {
  stream: 'only with subscriber tokens configured (AUTH_JWT_SECRET or AUTH_JWKS_URL): a token that is sent, or none with AUTH_REQUIRED=streams or all',
  rest: 'only with subscriber tokens configured and AUTH_REQUIRED=all',
} as const;

function errorResponses(errors: ErrorList, tokens?: keyof typeof TOKEN_NOTE) {
  const own = new Map(errors.map(([status, ...codes]) => [status, codes.join(', ')]));
  const byToken = new Map(tokens ? TOKEN_ERRORS.map(([status, ...codes]) => [status, `${codes.join(', ')}: ${TOKEN_NOTE[tokens]}`]) : []);
  const statuses = [...new Set([...own.keys(), ...byToken.keys()])].sort((a, b) => a - b);
  return statuses.map((status) => {
    const description = [own.get(status), byToken.get(status)].filter((d) => d !== undefined && d !== '').join('; ');
    return ApiResponse({ status, description, content: { 'application/json': { schema: schemaRef('Error') } } });
  });
}

/** Documents the error answers of a route with the codes it may give. */
export function ApiErrors(...errors: ErrorList) {
  return applyDecorators(...errorResponses(errors), RATE_LIMITED);
}

/**
 * ApiErrors of a route that checks subscriber tokens: also 401 UNAUTHORIZED or TOKEN_EXPIRED,
 * 403 PAIR_NOT_ENTITLED and 503 AUTH_UNAVAILABLE, noted as given only when tokens are configured
 * (a stream route: `stream`; REST under /api/, which needs AUTH_REQUIRED=all: `rest`).
 */
export function ApiTokenErrors(tokens: keyof typeof TOKEN_NOTE, ...errors: ErrorList) {
  return applyDecorators(...errorResponses(errors, tokens), RATE_LIMITED);
}
