import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { ApiError } from '../http/api-error';
import { MetricsService } from '../metrics/metrics.service';
import type { Transport } from '../shared/wire';
import type { SubscribeCommand } from '../stream/subscribe-request';
import { TokenVerifier, type Grant } from './token-verifier';

export type { Grant } from './token-verifier';

/** What asks for a token: a stream of a transport, or a REST request. */
export type AuthScope = Transport | 'rest';

/**
 * Who may subscribe (AUTH_*): the token of a request verified (TokenVerifier), or none when
 * AUTH_REQUIRED allows it, and what the token grants applied to what is asked (pairs, the
 * minimum conflation). Without a key (the default) every request is anonymous and nothing is
 * checked. Refusals are ApiErrors with the codes of docs/api.md (401 UNAUTHORIZED or
 * TOKEN_EXPIRED, 403 PAIR_NOT_ENTITLED), which every transport answers in its own way.
 */
@Injectable()
export class StreamAuth {
  private readonly logger = new Logger(StreamAuth.name);
  private readonly verifier: TokenVerifier | null;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.verifier = config.auth ? new TokenVerifier(config.auth) : null;
  }

  /** Whether REST under /api/ needs a token (AUTH_REQUIRED=all). */
  get restRequired(): boolean {
    return this.config.auth?.required === 'all';
  }

  /** The configured pairs. */
  get pairs(): readonly string[] {
    return this.config.pairs;
  }

  /** Whether any token is ever read (a key is configured). */
  get enabled(): boolean {
    return this.verifier !== null;
  }

  /**
   * The grant of the request's token; null for an anonymous request that may go on (no token and
   * none required, or no key at all). Rejects with 401 (or 503 AUTH_UNAVAILABLE), counted as a
   * refused connection of a stream unless `counted` is false (a token refreshed on an open stream).
   */
  async authorize(scope: AuthScope, token: string | undefined, counted = true): Promise<Grant | null> {
    if (this.verifier === null) return null;
    try {
      if (token === undefined) {
        if (!this.requires(scope)) return null;
        throw new ApiError(401, 'UNAUTHORIZED', 'a token is required: Authorization: Bearer <token>, or see docs/api.md for your transport');
      }
      const grant = await this.verifier.verify(token);
      this.logger.debug({ msg: 'token accepted', scope, sub: grant.sub, kid: grant.kid, tier: grant.tier });
      return grant;
    } catch (err) {
      if (counted && err instanceof ApiError && scope !== 'rest') this.metrics.refused(scope, err.code);
      throw err;
    }
  }

  /**
   * A subscription as the grant allows it: 403 PAIR_NOT_ENTITLED for a pair outside its `pairs`,
   * and a conflation interval no shorter than its `conflate` (`opening`: the connection's first
   * subscription, which starts at that interval when it asks for none).
   */
  entitle(grant: Grant | null, command: SubscribeCommand, opening: boolean): SubscribeCommand {
    if (grant === null) return command;
    this.checkPairs(grant, command.pairs);
    const floor = grant.minConflateMs;
    if (floor === 0) return command;
    const asked = command.conflateMs;
    if (asked === undefined) return opening ? { ...command, conflateMs: floor } : command;
    return asked < floor ? { ...command, conflateMs: floor } : command;
  }

  /** 403 PAIR_NOT_ENTITLED unless the grant covers every pair. */
  checkPairs(grant: Grant | null, pairs: Iterable<string>): void {
    const allowed = grant?.pairs;
    if (!allowed) return;
    for (const pair of pairs) {
      if (!allowed.has(pair)) throw new ApiError(403, 'PAIR_NOT_ENTITLED', `the token does not grant ${pair}`);
    }
  }

  /** The pairs a request that named none gets: every configured pair the grant covers (all of them without a grant). */
  defaultPairs(grant: Grant | null): string[] | undefined {
    const allowed = grant?.pairs;
    return allowed ? this.config.pairs.filter((p) => allowed.has(p)) : undefined;
  }

  private requires(scope: AuthScope): boolean {
    const required = this.config.auth?.required ?? 'off';
    return scope === 'rest' ? required === 'all' : required !== 'off';
  }
}
