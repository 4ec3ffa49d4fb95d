import { availableParallelism } from 'node:os';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { normalizePair } from '../domain/pair-name';
import { SOURCE_NAMES } from '../shared/wire';

/**
 * The forms of the variables AppConfig reads (zod schemas from the environment's strings):
 * numbers in a range, lists, URLs, pairs, durations, the proxies to trust, the Sentinels.
 * app-config.ts names every variable with one of these and its default.
 */

export const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `at least ${min}`).max(max, `at most ${max}`));

export const decimal = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `a number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `at least ${min}`).max(max, `at most ${max}`));

export const list = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s !== ''));

export const url = z
  .string()
  .trim()
  .url('an absolute http(s) URL')
  .refine((v) => /^https?:\/\//.test(v), 'an http or https URL')
  .transform((v) => v.replace(/\/+$/, ''));

/** A push feed's WebSocket URL, or `off` (poll only). */
export const wsUrl = z
  .string()
  .trim()
  .refine((v) => v === 'off' || /^wss?:\/\/[^\s/]+/.test(v), 'a ws:// or wss:// URL, or off')
  .transform((v) => (v === 'off' ? null : v));

/**
 * Which proxies in front may set `X-Forwarded-For`, with Express' `trust proxy` semantics: a hop
 * count, or trusted addresses/CIDRs (and proxy-addr's names `loopback`, `linklocal`,
 * `uniquelocal`). The client is then the right-most untrusted entry. `true` (trust every hop, so
 * the left-most entry, which the client writes itself) is refused.
 */
export type TrustProxy = false | number | readonly string[];
export const trustProxy = z
  .string()
  .trim()
  .transform((v, ctx): TrustProxy => {
    const lower = v.toLowerCase();
    if (lower === 'false' || lower === 'no' || lower === '0') return false;
    if (/^\d+$/.test(v)) {
      const hops = Number(v);
      if (hops > 32) ctx.addIssue({ code: 'custom', message: 'a hop count of at most 32' });
      return hops;
    }
    if (lower === 'true' || lower === 'yes') {
      ctx.addIssue({ code: 'custom', message: 'true would trust an address the client writes itself; give the number of proxies in front (e.g. 1) or their addresses/CIDRs' });
      return false;
    }
    const entries = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    try {
      proxyaddr.compile(entries);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'false, a hop count, or a comma-separated list of IP addresses, CIDRs, loopback, linklocal, uniquelocal' });
    }
    return entries;
  });

export const pairs = list.transform((items, ctx) => {
  const out: string[] = [];
  for (const item of items) {
    const p = normalizePair(item);
    if (!p) ctx.addIssue({ code: 'custom', message: `"${item}" is not a pair of the form BASE-QUOTE (e.g. BTC-USD)` });
    else if (!out.includes(p)) out.push(p);
  }
  if (out.length === 0) ctx.addIssue({ code: 'custom', message: 'at least one pair, e.g. BTC-USD,ETH-USD' });
  return out;
});

/** A duration as `<n>m`, `<n>h` or `<n>d` (e.g. `7d`), from one hour to 90 days; in ms. */
export const duration = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const m = /^(\d{1,5})([mhd])$/.exec(v);
    const ms = m ? Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'] : NaN;
    if (!(ms >= 3_600_000 && ms <= 90 * 86_400_000)) ctx.addIssue({ code: 'custom', message: 'a duration like 90m, 36h or 7d, from 1h to 90d' });
    return ms;
  });

/** `auto`: one worker per core the process may use; 1: no cluster (one process, as without the variable). */
export const workers = z
  .string()
  .trim()
  .transform((v, ctx) => {
    if (v.toLowerCase() === 'auto') return availableParallelism();
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!(n >= 1 && n <= 256)) ctx.addIssue({ code: 'custom', message: 'auto, or a whole number from 1 to 256' });
    return n;
  });

/** `host:port,…` (port 26379 when left out; IPv6 in brackets): the Sentinels to ask for the primary. */
export type RedisNode = { host: string; port: number };
export const sentinels = list.transform((items, ctx) => {
  const out: RedisNode[] = [];
  for (const item of items) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(item);
    const port = m?.[2] === undefined ? 26379 : Number(m[2]);
    if (!m || port < 1 || port > 65535) ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port (e.g. 10.0.0.5:26379,sentinel-b:26379)` });
    else out.push({ host: m[1].replace(/^\[|\]$/g, ''), port });
  }
  if (out.length === 0) ctx.addIssue({ code: 'custom', message: 'at least one host:port' });
  return out;
});

export const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['1', '0', 'true', 'false', 'yes', 'no'].includes(v), '1 or 0 (true/false, yes/no)')
  .transform((v) => ['1', 'true', 'yes'].includes(v));

export const sources = list.pipe(z.array(z.enum(SOURCE_NAMES, `one of ${SOURCE_NAMES.join(', ')}`)).min(1, 'at least one source'));
