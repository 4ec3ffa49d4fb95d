import { SignJWT, type JWTPayload } from 'jose';

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
