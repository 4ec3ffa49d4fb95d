import { HealthIndicatorService } from '@nestjs/terminus';
import { Subject } from 'rxjs';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryTickLog } from './memory-tick-log';
import { PriceHealthIndicator } from './price.health';
import { PriceStreamService } from './price-stream.service';
import type { Confirmation, TickDraft } from './tick-log';

/** A memory log whose appends fail while `failing` is set, and whose confirmations a test sends. */
class FlakyLog extends MemoryTickLog {
  failing = false;
  readonly confirmationsIn = new Subject<Confirmation>();
  override readonly confirmations$ = this.confirmationsIn.asObservable();

  override append(draft: TickDraft) {
    return this.failing ? Promise.reject(new Error('Command timed out')) : super.append(draft);
  }
}

function setup() {
  const config = loadConfig({ PAIRS: 'BTC-USD' });
  const log = new FlakyLog(config);
  const stream = new PriceStreamService(log, config, new MetricsService());
  const indicator = new PriceHealthIndicator(new HealthIndicatorService(), stream, config);
  let price = 100;
  const publish = () => log.publish({ pair: 'BTC-USD', price: ++price, source: 'simulated', timestamp: new Date().toISOString() });
  return { log, stream, publish, check: () => indicator.check('prices') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(PriceHealthIndicator.name, () => {
  it('is down while the prices confirmed here cannot be written, though they are fresh, and up once a write succeeds', async () => {
    const { log, publish, check } = setup();
    await publish();
    expect(check()).toMatchObject({ prices: { status: 'up' } });
    log.failing = true;
    await expect(publish()).rejects.toThrow('Command timed out');
    expect(check()).toMatchObject({ prices: { status: 'down', message: expect.stringMatching(/^ticks cannot be written to the log since .*: Command timed out$/) } });
    // Fresh by its confirmations, but nothing is published.
    expect(check()).toMatchObject({ prices: { pairs: { 'BTC-USD': { fresh: true } } } });
    log.failing = false;
    await publish();
    expect(check()).toMatchObject({ prices: { status: 'up' } });
  });

  it('is up again when a tick or a confirmation written since the failure arrives through the log (another instance publishes)', async () => {
    const { log, stream, publish, check } = setup();
    log.failing = true;
    await expect(publish()).rejects.toThrow();
    await sleep(2);
    // Written before the failure: proves nothing.
    log.confirmationsIn.next({ pair: 'BTC-USD', atMs: Date.now() - 60_000 });
    expect(check()).toMatchObject({ prices: { status: 'down' } });
    log.confirmationsIn.next({ pair: 'BTC-USD', atMs: Date.now() });
    expect(stream.writeFailure).toBeNull();
    expect(check()).toMatchObject({ prices: { status: 'up' } });

    await expect(publish()).rejects.toThrow();
    await sleep(2);
    expect(check()).toMatchObject({ prices: { status: 'down' } });
    log.failing = false;
    // Another writer's tick, through the log.
    await MemoryTickLog.prototype.append.call(log, { pair: 'BTC-USD', price: 1, source: 'simulated', timestamp: new Date().toISOString() });
    expect(stream.writeFailure).toBeNull();
    expect(check()).toMatchObject({ prices: { status: 'up' } });
  });
});
