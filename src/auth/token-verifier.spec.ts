import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
import { loadConfig } from '../config/app-config';
import { ApiError } from '../http/api-error';
import { JWKS_COOLDOWN_MS, MAX_TOKEN_LENGTH, TokenVerifier } from './token-verifier';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function verifier(env: Record<string, string>): TokenVerifier {
  const auth = loadConfig({ PAIRS: 'BTC-USD,ETH-USD', ...env }).auth;
  if (!auth) throw new Error('no auth config');
  return new TokenVerifier(auth);
}

/** The code (and status) a verification is refused with. */
async function refusal(v: TokenVerifier, token: string): Promise<[number, string]> {
  try {
    await v.verify(token);
  } catch (err) {
    if (err instanceof ApiError) return [err.statusCode, err.code];
    throw err;
  }
  throw new Error('the token was accepted');
}

describe('TokenVerifier (HS256, AUTH_JWT_SECRET)', () => {
  const v = verifier({ AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: 'prices', AUTH_ISSUER: 'https://issuer.test', AUTH_TIER_CLAIM: 'plan', AUTH_TIERS: 'free,pro' });
  const valid = (claims: JWTPayload = {}) =>
    new SignJWT({ aud: 'prices', iss: 'https://issuer.test', ...claims }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setSubject('alice').setExpirationTime(now() + 600).sign(key);

  it('grants what the claims say: sub, kid, pairs (normalised), minimum conflate, maxConnections, expiry, a bounded tier', async () => {
    const grant = await v.verify(await valid({ pairs: ['btc/usd'], conflate: 1000, maxConnections: 3, plan: 'pro' }));
    expect(grant).toMatchObject({ sub: 'alice', kid: 'k1', minConflateMs: 1000, maxConnections: 3, tier: 'pro' });
    expect([...grant.pairs!]).toEqual(['BTC-USD']);
    expect(grant.expiresAt).toBeGreaterThan(Date.now());
    // A tier outside AUTH_TIERS is `other`: the label has at most AUTH_TIERS + 2 values.
    expect((await v.verify(await valid({ plan: 'made-up-per-user-value' }))).tier).toBe('other');
    expect(await v.verify(await valid())).toMatchObject({ pairs: null, minConflateMs: 0, maxConnections: null, tier: 'other' });
  });

  it('refuses an expired token with TOKEN_EXPIRED, and one not valid yet, for another audience or issuer with UNAUTHORIZED', async () => {
    const expired = await new SignJWT({ aud: 'prices', iss: 'https://issuer.test' }).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(now() - 60).sign(key);
    expect(await refusal(v, expired)).toEqual([401, 'TOKEN_EXPIRED']);
    expect(await refusal(v, await valid({ nbf: now() + 600 }))).toEqual([401, 'UNAUTHORIZED']);
    expect(await refusal(v, await valid({ aud: 'someone-else' }))).toEqual([401, 'UNAUTHORIZED']);
    expect(await refusal(v, await valid({ iss: 'https://evil.test' }))).toEqual([401, 'UNAUTHORIZED']);
  });

  it('refuses alg none, a bad signature, another key, a token without sub or exp, and malformed claims', async () => {
    const none = new UnsecuredJWT({ aud: 'prices', iss: 'https://issuer.test', sub: 'alice', exp: now() + 600 }).encode();
    expect(await refusal(v, none)).toEqual([401, 'UNAUTHORIZED']);
    // The same with a made-up signature part: jose refuses `none` (only HS256 is allowed here).
    expect(await refusal(v, `${none}c2ln`)).toEqual([401, 'UNAUTHORIZED']);
    const good = await valid();
    const [h, p, s] = good.split('.');
    expect(await refusal(v, `${h}.${p}.${s.slice(0, -4)}AAAA`)).toEqual([401, 'UNAUTHORIZED']);
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' })).toString('base64url');
    expect(await refusal(v, `${h}.${forged}.${s}`)).toEqual([401, 'UNAUTHORIZED']);
    const other = await new SignJWT({ aud: 'prices', iss: 'https://issuer.test' }).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(now() + 60).sign(new TextEncoder().encode('another-secret-of-at-least-32-characters'));
    expect(await refusal(v, other)).toEqual([401, 'UNAUTHORIZED']);
    const noExp = await new SignJWT({ aud: 'prices', iss: 'https://issuer.test' }).setProtectedHeader({ alg: 'HS256' }).setSubject('a').sign(key);
    expect(await refusal(v, noExp)).toEqual([401, 'UNAUTHORIZED']);
    const noSub = await new SignJWT({ aud: 'prices', iss: 'https://issuer.test' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now() + 60).sign(key);
    expect(await refusal(v, noSub)).toEqual([401, 'UNAUTHORIZED']);
    for (const claims of [{ pairs: 'BTC-USD' }, { pairs: ['nope'] }, { conflate: -1 }, { conflate: 1.5 }, { maxConnections: 0 }]) {
      expect(await refusal(v, await valid(claims))).toEqual([401, 'UNAUTHORIZED']);
    }
    for (const junk of ['', 'abc', 'a.b', 'a.b.c.d', '....', 'Bearer x.y.z']) expect(await refusal(v, junk)).toEqual([401, 'UNAUTHORIZED']);
  });

  it('refuses a 100 KB token at constant cost: its length alone, before anything parses it', async () => {
    const huge = `${'a'.repeat(50_000)}.${'b'.repeat(50_000)}.c`;
    const started = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) await refusal(v, huge);
    const perCallUs = Number(process.hrtime.bigint() - started) / 1000 / 1000;
    expect(await refusal(v, huge)).toEqual([401, 'UNAUTHORIZED']);
    await expect(v.verify(huge)).rejects.toThrow(`longer than ${MAX_TOKEN_LENGTH}`);
    // A length check: far below what parsing 100 KB of base64 and JSON costs.
    expect(perCallUs).toBeLessThan(200);
  });

  it('refuses RS256 and ES256 tokens: only HS256 is accepted with a secret', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const rs = await new SignJWT({ aud: 'prices', iss: 'https://issuer.test' }).setProtectedHeader({ alg: 'RS256' }).setSubject('a').setExpirationTime(now() + 60).sign(privateKey);
    expect(await refusal(v, rs)).toEqual([401, 'UNAUTHORIZED']);
  });
});

describe('TokenVerifier (RS256/ES256, AUTH_JWKS_URL)', () => {
  let server: Server;
  let keys: JWK[] = [];
  let fetches = 0;
  let jwksUrl = '';

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches++;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const publish = async (alg: 'RS256' | 'ES256', kid: string) => {
    const pair = await generateKeyPair(alg, { extractable: true });
    keys = [...keys, { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' }];
    return { ...pair, sign: (claims: JWTPayload = {}, sub = 'bot-1') => new SignJWT(claims).setProtectedHeader({ alg, kid }).setSubject(sub).setExpirationTime(now() + 600).sign(pair.privateKey) };
  };

  it('verifies RS256 and ES256 tokens from the JWKS, caches it, and fetches it again for a new kid (rotation)', async () => {
    keys = [];
    fetches = 0;
    const v = verifier({ AUTH_JWKS_URL: jwksUrl });
    const a = await publish('RS256', 'key-a');
    expect(await v.verify(await a.sign())).toMatchObject({ sub: 'bot-1', kid: 'key-a' });
    expect(await v.verify(await a.sign({}, 'bot-2'))).toMatchObject({ sub: 'bot-2' });
    expect(fetches).toBe(1);
    // Rotation: the issuer publishes key-b and signs with it; the cached set does not know it.
    const b = await publish('ES256', 'key-b');
    const tokenB = await b.sign();
    await new Promise((resolve) => setTimeout(resolve, JWKS_COOLDOWN_MS + 100));
    expect(await v.verify(tokenB)).toMatchObject({ sub: 'bot-1', kid: 'key-b' });
    expect(fetches).toBe(2);
    // A made-up kid is refused (and within the cooldown costs the key server nothing).
    const c = await generateKeyPair('ES256');
    const unknown = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'made-up' }).setSubject('x').setExpirationTime(now() + 60).sign(c.privateKey);
    expect(await refusal(v, unknown)).toEqual([401, 'UNAUTHORIZED']);
    expect(fetches).toBe(2);
  }, 20_000);

  it('refuses the key confusion attack: an HS256 token signed with the RSA public key, and alg none', async () => {
    keys = [];
    const v = verifier({ AUTH_JWKS_URL: jwksUrl });
    const a = await publish('RS256', 'key-a');
    const pem = await exportSPKI(a.publicKey);
    for (const secret of [new TextEncoder().encode(pem), new TextEncoder().encode(JSON.stringify(keys[0]))]) {
      const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'key-a' }).setSubject('mallory').setExpirationTime(now() + 60).sign(secret);
      expect(await refusal(v, confused)).toEqual([401, 'UNAUTHORIZED']);
    }
    const none = new UnsecuredJWT({ sub: 'mallory', exp: now() + 60 }).encode();
    expect(await refusal(v, `${none}x`)).toEqual([401, 'UNAUTHORIZED']);
    expect(await v.verify(await a.sign())).toMatchObject({ sub: 'bot-1' });
  });

  it('answers 503 AUTH_UNAVAILABLE when the JWKS cannot be read', async () => {
    const v = verifier({ AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' });
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setSubject('x').setExpirationTime(now() + 60).sign(privateKey);
    expect(await refusal(v, token)).toEqual([503, 'AUTH_UNAVAILABLE']);
  });
});

describe('AUTH_* configuration', () => {
  const error = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };

  it('is off by default: no key, nothing checked', () => {
    expect(loadConfig({}).auth).toBeNull();
    expect(loadConfig({ AUTH_REQUIRED: 'off' }).auth).toBeNull();
  });

  it('reads a key source, what needs a token, audience, issuer and the tier claim', () => {
    expect(loadConfig({ AUTH_REQUIRED: 'streams', AUTH_JWT_SECRET: SECRET }).auth).toEqual({ required: 'streams', key: { kind: 'secret', secret: SECRET }, audience: undefined, issuer: undefined, tierClaim: undefined, tiers: [] });
    expect(loadConfig({ AUTH_REQUIRED: 'all', AUTH_JWKS_URL: 'https://issuer.test/jwks.json', AUTH_AUDIENCE: 'prices', AUTH_TIER_CLAIM: 'plan', AUTH_TIERS: 'free, pro' }).auth).toMatchObject({
      required: 'all',
      key: { kind: 'jwks', url: 'https://issuer.test/jwks.json' },
      audience: 'prices',
      tierClaim: 'plan',
      tiers: ['free', 'pro'],
    });
  });

  it('names what is wrong: a requirement without a key, two key sources, a weak secret, settings without a key, a tier claim without its values', () => {
    expect(error({ AUTH_REQUIRED: 'streams' })).toMatch(/AUTH_REQUIRED="streams": streams needs a key to verify tokens: set AUTH_JWT_SECRET or AUTH_JWKS_URL/);
    expect(error({ AUTH_REQUIRED: 'sometimes' })).toMatch(/AUTH_REQUIRED=.*off, streams or all/);
    expect(error({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: 'https://x.test/jwks' })).toMatch(/AUTH_JWKS_URL=.*not both/);
    expect(error({ AUTH_JWT_SECRET: 'short' })).toMatch(/AUTH_JWT_SECRET=.*at least 32 characters/);
    expect(error({ AUTH_AUDIENCE: 'prices' })).toMatch(/AUTH_AUDIENCE=.*only used with AUTH_JWT_SECRET or AUTH_JWKS_URL/);
    expect(error({ AUTH_JWT_SECRET: SECRET, AUTH_TIER_CLAIM: 'plan' })).toMatch(/AUTH_TIERS=.*required with AUTH_TIER_CLAIM/);
    expect(error({ AUTH_JWT_SECRET: SECRET, AUTH_TIER_CLAIM: 'plan', AUTH_TIERS: 'Free Tier' })).toMatch(/AUTH_TIERS=.*lower-case/);
    expect(error({ AUTH_JWKS_URL: 'ftp://x.test/jwks' })).toMatch(/AUTH_JWKS_URL=/);
  });
});
