import type { IncomingHttpHeaders } from 'node:http';
import { WS_BEARER_PREFIX } from '../shared/wire';

/**
 * Where a subscriber's token comes from, per transport: `Authorization: Bearer` (REST, SSE), the
 * `token` query parameter (EventSource, WebSocket), the WebSocket subprotocol `bearer.<token>`
 * (offered beside `price-stream`, which the server selects), Socket.IO's `auth.token`.
 */

/** The bearer token of an Authorization header; another scheme is returned whole (and fails verification). */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (value === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value);
  return m ? m[1] : value;
}

/** The token a WebSocket client offers as the subprotocol `bearer.<token>`. */
export function protocolToken(headers: IncomingHttpHeaders): string | undefined {
  const offered = headers['sec-websocket-protocol'];
  if (offered === undefined) return undefined;
  for (const p of offered.split(',')) {
    const protocol = p.trim();
    if (protocol.startsWith(WS_BEARER_PREFIX)) return protocol.slice(WS_BEARER_PREFIX.length);
  }
  return undefined;
}

/** Socket.IO's handshake `auth.token` (the rest of `auth` is the subscription). */
export function authToken(auth: unknown): string | undefined {
  if (typeof auth !== 'object' || auth === null || !Object.hasOwn(auth, 'token')) return undefined;
  const token = (auth as { token?: unknown }).token;
  return typeof token === 'string' ? token : token === undefined || token === null ? undefined : '';
}

/** A request target with the value of any `token` parameter replaced: what may be logged of it. */
export function redactToken(url: string | undefined): string | undefined {
  if (url === undefined || !/token=/i.test(url)) return url;
  return url.replace(/([?&](?:[^=&#]*token)=)[^&#]*/gi, '$1[redacted]');
}
