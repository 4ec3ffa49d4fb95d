import type { Response } from 'express';
import type { Tick } from '../shared/wire';
import { encoded, WireShape } from '../stream/encoded';

/** A latest-price answer serialised once per tick, with the ETag that names it. */
export type CachedBody = { readonly tick: Tick; readonly json: string; readonly length: number; readonly etag: string };

/**
 * One route's body, a wire shape of the tick: built once per tick by the stream core's cache
 * (the stream replaces a pair's latest tick on every tick and never mutates it). A tick id names
 * one tick for good, on every instance (Redis ids included), so `"<variant>-<id>"` is a strong
 * ETag: a client that sends it back in If-None-Match gets 304.
 */
export class LatestBodyCache {
  private readonly wire: WireShape<CachedBody>;

  constructor(variant: string, shape: (tick: Tick) => unknown = (tick) => tick) {
    this.wire = new WireShape(`rest-${variant}`, (tick) => {
      const json = JSON.stringify(shape(tick));
      return { tick, json, length: Buffer.byteLength(json), etag: `"${variant}-${tick.id}"` };
    });
  }

  get(tick: Tick): CachedBody {
    return encoded(tick, this.wire);
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
