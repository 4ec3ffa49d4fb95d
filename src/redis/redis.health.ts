import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LeaderElection } from './leader-election.service';

/**
 * Up while Redis answers (the caller bounds it with a timeout) and this instance is not the one
 * that holds the leader lease without publishing: the lease names us, yet we do not poll (taking
 * over, or a lease taken by a command whose answer we never got), so nobody publishes.
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly election: LeaderElection,
  ) {}

  async check(key: string) {
    const session = this.health.check(key);
    const leader = this.election.isLeader;
    const started = Date.now();
    try {
      // No offline queue: while disconnected this fails at once instead of waiting.
      const holder = await this.election.lease.holder();
      const latencyMs = Date.now() - started;
      if (holder === this.election.lease.token && !this.election.isLeader) {
        return session.down({ latencyMs, leader, message: 'this instance holds the leader lease but does not poll yet: nothing is published' });
      }
      return session.up({ latencyMs, leader, leaderLeaseHeld: holder !== null });
    } catch (err) {
      return session.down({ leader, message: err instanceof Error ? err.message : String(err) });
    }
  }
}
