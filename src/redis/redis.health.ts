import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LeaderElection } from './leader-election.service';
import { RedisClients } from './redis.clients';

/** Up while Redis answers a PING (the caller bounds it with a timeout); reports who polls. */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly clients: RedisClients,
    private readonly election: LeaderElection,
  ) {}

  async check(key: string) {
    const session = this.health.check(key);
    const leader = this.election.isLeader;
    const started = Date.now();
    try {
      // No offline queue: while disconnected this fails at once instead of waiting.
      await this.clients.command.ping();
      return session.up({ latencyMs: Date.now() - started, leader });
    } catch (err) {
      return session.down({ leader, message: err instanceof Error ? err.message : String(err) });
    }
  }
}
