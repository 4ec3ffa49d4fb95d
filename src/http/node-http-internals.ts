import { createRequire } from 'node:module';

/**
 * Node's internal `_http_common` (lib/_http_common.js: its HTTP parser, llhttp, and the parsers'
 * pool), loaded once; `null` where this Node has none. Its exports are typed by each user
 * (release-parser.ts, request-head.ts), which checks what it needs is there.
 */
export function nodeHttpCommon(): Readonly<Record<string, unknown>> | null {
  if (common === undefined) {
    try {
      common = createRequire(__filename)('_http_common') as Record<string, unknown>;
    } catch {
      common = null;
    }
  }
  return common;
}

let common: Record<string, unknown> | null | undefined;
