import { applyDecorators } from '@nestjs/common';
import { ApiResponse, type SchemaObject } from '@nestjs/swagger';
import { SOURCE_NAMES, TICK_SOURCES, type ErrorCode } from '../shared/wire';

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

/** Documents the error answers of a route with the codes it may give. */
export function ApiErrors(...errors: [status: number, ...codes: ErrorCode[]][]) {
  return applyDecorators(
    ...errors.map(([status, ...codes]) => ApiResponse({ status, description: codes.join(', '), schema: ErrorSchema })),
    ApiResponse({ status: 429, description: 'RATE_LIMITED (with Retry-After)', schema: ErrorSchema }),
  );
}
