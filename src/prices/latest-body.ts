import type { Response } from 'express';
import type { Tick } from '../shared/wire';

/** A latest-price answer serialised once per tick, with the ETag that names it. */
export type CachedBody = { readonly tick: Tick; readonly json: string; readonly length: number; readonly etag: string };

/**
 * One route's body per pair, rebuilt only when the pair's latest tick is another object (the
 * stream replaces it on every tick and never mutates it). A tick id names one tick for good, on
 * every instance (Redis ids included), so `"<variant>-<id>"` is a strong ETag: a client that
 * sends it back in If-None-Match gets 304.
 */
export class LatestBodyCache {
  private readonly bodies = new Map<string, CachedBody>();

  constructor(
    private readonly variant: string,
    private readonly shape: (tick: Tick) => unknown = (tick) => tick,
  ) {}

  get(tick: Tick): CachedBody {
    const cached = this.bodies.get(tick.pair);
    if (cached?.tick === tick) return cached;
    const json = JSON.stringify(this.shape(tick));
    const body: CachedBody = { tick, json, length: Buffer.byteLength(json), etag: `"${this.variant}-${tick.id}"` };
    this.bodies.set(tick.pair, body);
    return body;
  }
}

const NO_CACHE = /(?:^|,)\s*?no-cache\s*?(?:,|$)/;

/**
 * Whether a GET may be answered 304 for this ETag: Express' own test (the `fresh` package), for
 * a response that has an ETag and no Last-Modified. `Cache-Control: no-cache` asks for the body
 * again; If-None-Match may list several tags, weak forms or `*`.
 */
export function isFresh(headers: { 'if-none-match'?: string; 'if-modified-since'?: string; 'cache-control'?: string }, etag: string): boolean {
  const noneMatch = headers['if-none-match'];
  if (!noneMatch) return false;
  const cacheControl = headers['cache-control'];
  if (cacheControl && NO_CACHE.test(cacheControl)) return false;
  if (noneMatch === '*') return true;
  return noneMatch.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === etag || tag === `W/${etag}` || `W/${tag}` === etag;
  });
}

/**
 * Answers an Express route with a cached body: its ETag set first, so that Express neither
 * hashes the body again nor misses a conditional GET (it answers 304 when If-None-Match names it).
 */
export function sendLatest(res: Response, body: CachedBody): string {
  res.setHeader('ETag', body.etag);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  return body.json;
}
