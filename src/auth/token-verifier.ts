import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { AuthConfig } from '../config/app-config';
import { normalizePair } from '../domain/pair';
import { ApiError } from '../http/api-error';
import { CONFLATE_MAX_MS } from '../shared/wire';

/**
 * A token longer than this is refused before anything reads it (a constant cost whatever is
 * sent: a 100 KB token costs one length check). Real subscriber tokens are a few hundred bytes.
 */
export const MAX_TOKEN_LENGTH = 4096;
/** Allowance for clocks that differ between the token's issuer and this service. */
export const CLOCK_TOLERANCE_S = 5;
/** A token with an unknown kid refetches the JWKS, at most this often (a flood of made-up kids costs the key server one request per interval). */
export const JWKS_COOLDOWN_MS = 5_000;
const MAX_SUB_LENGTH = 256;
/** Three base64url parts: a cheap, linear check before jose parses anything. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** What a verified token grants: who (`sub`), which pairs, how fast, how many connections, until when. */
export type Grant = {
  readonly sub: string;
  /** The key id of the token's header (logged with `sub`, nothing else of the token is). */
  readonly kid: string | undefined;
  /** The pairs it may read; null: every configured pair. */
  readonly pairs: ReadonlySet<string> | null;
  /** The smallest conflation interval it may ask for (0: every tick). */
  readonly minConflateMs: number;
  /** Its own cap on concurrent streams (null: MAX_STREAM_CONNECTIONS_PER_IP, counted per `sub`). */
  readonly maxConnections: number | null;
  /** When the token expires (epoch ms). */
  readonly expiresAt: number;
  /** The metrics label: one of AUTH_TIERS, or `other`. */
  readonly tier: string;
};

/** When a stream opened with this grant ends: at the token's `exp`, with the clock allowance the verifier gave it. */
export function streamEnd(grant: Grant): number {
  return grant.expiresAt + CLOCK_TOLERANCE_S * 1000;
}

const unauthorized = (message: string) => new ApiError(401, 'UNAUTHORIZED', message);

/**
 * The one verifier of subscriber tokens (jose's `jwtVerify`). The algorithms are pinned by the key
 * source: HS256 only with AUTH_JWT_SECRET, RS256/ES256 only with AUTH_JWKS_URL, so `alg: none`
 * and an HS256 token signed with an RSA public key are refused by jose before any key is used.
 * `sub` and `exp` are required; audience and issuer are checked when configured.
 */
export class TokenVerifier {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly options: JWTVerifyOptions;

  constructor(private readonly auth: AuthConfig) {
    if (auth.key.kind === 'secret') {
      this.key = new TextEncoder().encode(auth.key.secret);
    } else {
      // Cached (10 min); an unknown kid refetches the set at most every JWKS_COOLDOWN_MS, so a rotated key works within seconds.
      this.key = createRemoteJWKSet(new URL(auth.key.url), { timeoutDuration: 5_000, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: 600_000 });
    }
    this.options = {
      algorithms: auth.key.kind === 'secret' ? ['HS256'] : ['RS256', 'ES256'],
      audience: auth.audience,
      issuer: auth.issuer,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['sub', 'exp'],
    };
  }

  /** The grant of a token, or an ApiError: 401 UNAUTHORIZED, 401 TOKEN_EXPIRED, 503 AUTH_UNAVAILABLE (the JWKS cannot be read). */
  async verify(token: string): Promise<Grant> {
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized(`the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    if (!COMPACT_JWS.test(token)) throw unauthorized('the token is not a signed JWT');
    let payload: JWTPayload;
    let kid: string | undefined;
    try {
      const verified = typeof this.key === 'function' ? await jwtVerify(token, this.key, this.options) : await jwtVerify(token, this.key, this.options);
      payload = verified.payload;
      kid = verified.protectedHeader.kid;
    } catch (err) {
      throw refusal(err, typeof this.key === 'function');
    }
    return this.grantOf(payload, kid);
  }

  private grantOf(payload: JWTPayload, kid: string | undefined): Grant {
    const { sub, exp } = payload;
    if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUB_LENGTH) throw unauthorized(`sub must be a string of 1 to ${MAX_SUB_LENGTH} characters`);
    return {
      sub,
      kid: typeof kid === 'string' ? kid.slice(0, 128) : undefined,
      pairs: pairsClaim(payload.pairs),
      minConflateMs: intClaim(payload.conflate, 'conflate', 0, CONFLATE_MAX_MS) ?? 0,
      maxConnections: intClaim(payload.maxConnections, 'maxConnections', 1, 1_000_000),
      expiresAt: (exp as number) * 1000,
      tier: this.tierOf(payload),
    };
  }

  private tierOf(payload: JWTPayload): string {
    const claim = this.auth.tierClaim;
    const value = claim === undefined ? undefined : payload[claim];
    return typeof value === 'string' && this.auth.tiers.includes(value) ? value : 'other';
  }
}

/** jose's error as our answer: an expired token has its own code; an unreadable JWKS is the service's fault, not the token's. */
function refusal(err: unknown, remote: boolean): ApiError {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (code === 'ERR_JWT_EXPIRED') return new ApiError(401, 'TOKEN_EXPIRED', 'the token has expired; get a new one');
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const claim = (err as { claim?: unknown }).claim;
    return unauthorized(claim === 'nbf' ? 'the token is not valid yet' : `the token's ${typeof claim === 'string' ? claim : 'claims'} claim is not accepted here`);
  }
  // A JWKS fetch that failed (timeout, network, not a key set) throws these or a plain error.
  if (remote && (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || !code.startsWith('ERR_'))) {
    return new ApiError(503, 'AUTH_UNAVAILABLE', 'the token keys cannot be read now; retry shortly');
  }
  return unauthorized('the token is not valid');
}

/** `pairs`: an array of pair names; null when absent (every pair). */
function pairsClaim(value: unknown): ReadonlySet<string> | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.length > 1000) throw unauthorized('pairs must be an array of pair names');
  const out = new Set<string>();
  for (const item of value) {
    const pair = typeof item === 'string' ? normalizePair(item) : null;
    if (!pair) throw unauthorized('pairs must be an array of pair names');
    out.add(pair);
  }
  return out;
}

function intClaim(value: unknown, name: string, min: number, max: number): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw unauthorized(`${name} must be a whole number from ${min} to ${max}`);
  return value;
}
