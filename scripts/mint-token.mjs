#!/usr/bin/env node
// Mints a subscriber token (HS256) for tests and demos, signed with AUTH_JWT_SECRET, with the
// audience and issuer of AUTH_AUDIENCE / AUTH_ISSUER when they are set (see docs/api.md, "Tokens").
//
//   AUTH_JWT_SECRET=... node scripts/mint-token.mjs --sub alice --pairs BTC-USD,ETH-USD --ttl 3600 \
//     [--conflate 1000] [--max-connections 5] [--tier pro]
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';

const { values } = parseArgs({
  options: {
    sub: { type: 'string', default: 'test-subscriber' },
    pairs: { type: 'string' },
    ttl: { type: 'string', default: '3600' },
    conflate: { type: 'string' },
    'max-connections': { type: 'string' },
    tier: { type: 'string' },
    kid: { type: 'string' },
  },
});

const secret = process.env.AUTH_JWT_SECRET;
if (!secret) {
  console.error('set AUTH_JWT_SECRET (the service\'s HS256 secret) to sign with');
  process.exit(2);
}
const claims = {};
if (values.pairs) claims.pairs = values.pairs.split(',').map((p) => p.trim()).filter(Boolean);
if (values.conflate) claims.conflate = Number(values.conflate);
if (values['max-connections']) claims.maxConnections = Number(values['max-connections']);
if (values.tier) claims[process.env.AUTH_TIER_CLAIM || 'tier'] = values.tier;

let jwt = new SignJWT(claims)
  .setProtectedHeader(values.kid ? { alg: 'HS256', kid: values.kid } : { alg: 'HS256' })
  .setSubject(values.sub)
  .setIssuedAt()
  .setExpirationTime(`${Number(values.ttl)}s`);
if (process.env.AUTH_AUDIENCE) jwt = jwt.setAudience(process.env.AUTH_AUDIENCE);
if (process.env.AUTH_ISSUER) jwt = jwt.setIssuer(process.env.AUTH_ISSUER);
console.log(await jwt.sign(new TextEncoder().encode(secret)));
