import { HealthIndicatorService } from '@nestjs/terminus';
import type { LeaderElection } from './leader-election.service';
import { RedisHealthIndicator } from './redis.health';

function indicator(state: { isLeader: boolean; holder: string | null | Error }) {
  const election = {
    get isLeader() {
      return state.isLeader;
    },
    lease: {
      token: 'mine',
      holder: () => (state.holder instanceof Error ? Promise.reject(state.holder) : Promise.resolve(state.holder)),
    },
  } as unknown as LeaderElection;
  return new RedisHealthIndicator(new HealthIndicatorService(), election);
}

describe(RedisHealthIndicator.name, () => {
  it('is up on the leader, and on a follower while another instance (or nobody yet) holds the lease', async () => {
    expect(await indicator({ isLeader: true, holder: 'mine' }).check('redis')).toMatchObject({ redis: { status: 'up', leader: true, leaderLeaseHeld: true } });
    expect(await indicator({ isLeader: false, holder: 'other' }).check('redis')).toMatchObject({ redis: { status: 'up', leader: false, leaderLeaseHeld: true } });
    expect(await indicator({ isLeader: false, holder: null }).check('redis')).toMatchObject({ redis: { status: 'up', leaderLeaseHeld: false } });
  });

  it('is down while the lease names this instance but it does not poll: nobody publishes', async () => {
    expect(await indicator({ isLeader: false, holder: 'mine' }).check('redis')).toMatchObject({
      redis: { status: 'down', leader: false, message: expect.stringContaining('holds the leader lease but does not poll') },
    });
  });

  it('is down when Redis does not answer', async () => {
    expect(await indicator({ isLeader: false, holder: new Error('Connection is closed.') }).check('redis')).toMatchObject({ redis: { status: 'down', message: 'Connection is closed.' } });
  });
});
