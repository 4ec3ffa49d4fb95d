import type { IncomingHttpHeaders } from 'node:http';
import { nodeHttpCommon } from './node-http-internals';

/** A request read whole from one chunk of a connection (readRequestHead). */
export type RequestHead = {
  readonly method: 'GET';
  /** The request target as sent (path and query). */
  readonly url: string;
  /** As Node's IncomingMessage has them: lower-case names, repeats joined or dropped as Node does. */
  readonly headers: IncomingHttpHeaders;
};

type Parser = {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  [key: number]: unknown;
};
type ParserClass = { new (): Parser; REQUEST: number; kOnMessageBegin: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number; kOnExecute: number };
type HttpCommon = { HTTPParser?: ParserClass; methods?: readonly string[] };

/**
 * Reads a GET request from the first bytes a connection sent, with Node's own HTTP parser
 * (llhttp, the one its HTTP server uses; `_http_common`: node-http-internals.ts), strictly
 * (no lenient flags). Only the plainest request is read here: one whole HTTP/1.1 GET in these
 * bytes and nothing after it, one `Host`, no body (`Content-Length`, `Transfer-Encoding`), no
 * `Upgrade` and no `Expect`, the head within `maxHeaderSize` (the server's: Node refuses a larger
 * one with 431 or 414). Anything else, and anything llhttp refuses,
 * is `undefined`: the connection is then Node's HTTP server's to parse from these same bytes,
 * which answers or refuses it as it always did.
 *
 * One parser serves every call: `execute` runs its callbacks before it returns.
 */
export function readRequestHead(bytes: Buffer, maxHeaderSize: number): RequestHead | undefined {
  const parser = sharedParser();
  if (parser === null || bytes.length > maxHeaderSize) return undefined;
  seen = undefined;
  messages = 0;
  extra = false;
  parser.initialize(REQUEST, RESOURCE, maxHeaderSize, 0);
  const parsed = parser.execute(bytes);
  const head = seen as Seen | undefined;
  seen = undefined;
  if (parsed !== bytes.length || messages !== 1 || extra || head === undefined) return undefined;
  if (head.method !== 'GET' || head.major !== 1 || head.minor !== 1 || head.upgrade) return undefined;
  const headers = headerObject(head.raw);
  if (headers === undefined || headers.host === undefined) return undefined;
  return { method: 'GET', url: head.url, headers };
}

/** Whether this Node's parser can be had (`_http_common.HTTPParser`, with the callbacks used here): without it nothing is read here. */
export function canReadRequestHeads(): boolean {
  return sharedParser() !== null;
}

type Seen = { method: string | undefined; url: string; raw: string[]; major: number; minor: number; upgrade: boolean };
let seen: Seen | undefined;
/** Messages begun in these bytes. */
let messages = 0;
/** A callback the plain request never makes (a body, headers in several parts) was made. */
let extra = false;

let parserOf: Parser | null | undefined;
let REQUEST = 0;
const RESOURCE = {};

function sharedParser(): Parser | null {
  if (parserOf !== undefined) return parserOf;
  parserOf = null;
  try {
    const common = nodeHttpCommon() as HttpCommon | null;
    const Class = common?.HTTPParser;
    const methods = common?.methods;
    if (typeof Class !== 'function' || !Array.isArray(methods)) return null;
    const keys = [Class.REQUEST, Class.kOnMessageBegin, Class.kOnHeaders, Class.kOnHeadersComplete, Class.kOnBody, Class.kOnMessageComplete, Class.kOnExecute];
    if (!keys.every((k) => typeof k === 'number')) return null;
    const parser = new Class();
    REQUEST = Class.REQUEST;
    // A second message begun (pipelined, whole or not) is counted here, at its first byte.
    parser[Class.kOnMessageBegin] = () => {
      messages++;
    };
    parser[Class.kOnHeaders] = () => {
      extra = true;
    };
    parser[Class.kOnHeadersComplete] = (major: number, minor: number, raw: string[], method: number, url: string, _status: unknown, _message: unknown, upgrade: boolean) => {
      seen = { method: methods[method], url, raw, major, minor, upgrade };
      return 0;
    };
    parser[Class.kOnBody] = () => {
      extra = true;
    };
    parser[Class.kOnMessageComplete] = () => undefined;
    parser[Class.kOnExecute] = () => undefined;
    parserOf = parser;
  } catch {
    parserOf = null;
  }
  return parserOf;
}

/** Repeats of these are dropped (the first one counts), as Node documents for `message.headers`. */
const SINGLE = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * The headers as Node's `message.headers`: lower-case names; repeats of SINGLE dropped, of
 * `cookie` joined with `; `, of the rest with `, ` (`set-cookie`, a response header, as an
 * array). `undefined` when the request has a body, a second `Host`, or asks for an upgrade or a
 * `100 Continue`: those are Node's to handle.
 */
export function headerObject(raw: readonly string[]): IncomingHttpHeaders | undefined {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'upgrade' || name === 'expect') return undefined;
    const had = headers[name];
    if (had === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'host') return undefined;
    else if (SINGLE.has(name)) continue;
    else if (name === 'set-cookie') (had as string[]).push(value);
    else headers[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  // A plain object, as Node's (`Object.create(null)` would lack hasOwnProperty for callers).
  return { ...headers } as IncomingHttpHeaders;
}
