import { SignJWT, type JWTPayload } from 'jose';
import { openStream, type RawStream } from './sse';

/** The HS256 secret the auth specs configure (AUTH_JWT_SECRET). */
export const TEST_SECRET = 'e2e-subscriber-secret-0123456789abcdef';

/** A subscriber token signed in the test: `sub`, extra claims, and an expiry `ttlS` seconds from now (negative: expired). */
export function mint(sub: string, claims: JWTPayload = {}, ttlS = 600, secret = TEST_SECRET): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
    .sign(new TextEncoder().encode(secret));
}

/** `Authorization: Bearer <token>`. */
export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

/** Opens SSE streams of the app `url()` names and closes every one it opened on `closeAll()`. */
export function sseStreams(url: () => string): { open(query: string, headers?: Record<string, string>): Promise<RawStream>; closeAll(): void } {
  const streams: RawStream[] = [];
  return {
    open: async (query, headers = {}) => {
      const s = await openStream(`${url()}/api/prices/stream?${query}`, headers);
      streams.push(s);
      return s;
    },
    closeAll: () => {
      for (const s of streams.splice(0)) s.close();
    },
  };
}
