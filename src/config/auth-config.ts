import { z } from 'zod';
import { list, url } from './config-fields';

/**
 * The AUTH_* variables (app-config.ts reads them with the others): who may subscribe.
 * Off by default: without them nothing changes.
 */
export const authSchema = {
  // off: a token is never needed (one that is sent is verified when a key is set); streams: every stream needs one; all: REST under /api/ too.
  AUTH_REQUIRED: z.enum(['off', 'streams', 'all'], 'off, streams or all').default('off'),
  // HS256: the shared secret (at least 32 bytes: a 256-bit key).
  AUTH_JWT_SECRET: z.string().min(32, 'at least 32 characters (a 256-bit HS256 key)').optional(),
  // RS256/ES256: the issuer's JWKS, fetched on the first token, cached, refetched on an unknown kid.
  AUTH_JWKS_URL: url.optional(),
  AUTH_AUDIENCE: z.string().trim().min(1).max(256).optional(),
  AUTH_ISSUER: z.string().trim().min(1).max(256).optional(),
  // The claim whose value is the subscriber's tier (a metrics label); only the AUTH_TIERS values are kept, any other is `other`.
  AUTH_TIER_CLAIM: z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'a claim name (letters, digits, _.-)').optional(),
  AUTH_TIERS: list.pipe(z.array(z.string().regex(/^[a-z0-9_-]{1,32}$/, 'tiers are lower-case letters, digits, _ or - (at most 32)')).max(20, 'at most 20 tiers')).optional(),
};

type AuthInput = z.output<z.ZodObject<typeof authSchema>>;

export type AuthKey = { kind: 'secret'; secret: string } | { kind: 'jwks'; url: string };

/** Token verification and what needs a token; null: no key, every request is anonymous. */
export type AuthConfig = {
  /** What needs a token: nothing (a token sent is still verified), every stream, or streams and REST under /api/. */
  required: 'off' | 'streams' | 'all';
  key: AuthKey;
  audience: string | undefined;
  issuer: string | undefined;
  tierClaim: string | undefined;
  /** The only values the tier label takes (besides `other` and `anonymous`). */
  tiers: readonly string[];
};

/** The configuration errors of the AUTH_* variables (a custom issue per bad variable). */
export function checkAuth(p: AuthInput, issue: (name: string, message: string) => void): void {
  if (p.AUTH_JWT_SECRET && p.AUTH_JWKS_URL) issue('AUTH_JWKS_URL', 'set either AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (RS256/ES256), not both');
  const keyed = Boolean(p.AUTH_JWT_SECRET || p.AUTH_JWKS_URL);
  if (p.AUTH_REQUIRED !== 'off' && !keyed) issue('AUTH_REQUIRED', `${p.AUTH_REQUIRED} needs a key to verify tokens: set AUTH_JWT_SECRET or AUTH_JWKS_URL`);
  if (!keyed) {
    for (const name of ['AUTH_AUDIENCE', 'AUTH_ISSUER', 'AUTH_TIER_CLAIM', 'AUTH_TIERS'] as const) {
      if (p[name] !== undefined) issue(name, 'only used with AUTH_JWT_SECRET or AUTH_JWKS_URL');
    }
  }
  if (p.AUTH_TIER_CLAIM && !p.AUTH_TIERS?.length) issue('AUTH_TIERS', 'required with AUTH_TIER_CLAIM: the tier values the metrics label may take (any other counts as `other`)');
  if (p.AUTH_TIERS?.length && !p.AUTH_TIER_CLAIM) issue('AUTH_TIER_CLAIM', 'required with AUTH_TIERS: the claim that names the tier');
}

export function authConfig(p: AuthInput): AuthConfig | null {
  const key: AuthKey | null = p.AUTH_JWT_SECRET ? { kind: 'secret', secret: p.AUTH_JWT_SECRET } : p.AUTH_JWKS_URL ? { kind: 'jwks', url: p.AUTH_JWKS_URL } : null;
  if (key === null) return null;
  return { required: p.AUTH_REQUIRED, key, audience: p.AUTH_AUDIENCE, issuer: p.AUTH_ISSUER, tierClaim: p.AUTH_TIER_CLAIM, tiers: p.AUTH_TIERS ?? [] };
}
