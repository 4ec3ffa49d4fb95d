import { Subject } from 'rxjs';
import type { ResumePoint } from '../domain/resume';
import { loadConfig, type AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import type { DisconnectReason, PairStatus, ResetEvent, Tick } from '../shared/wire';
import { MemoryTickLog } from './memory-tick-log';
import { PriceStreamService } from './price-stream.service';
import { StreamHub, type DeltaMessage, type Sink, type StreamMessage, type Subscriber } from './stream-hub';
import type { Lease } from './connection-registry';
import type { TickLog } from './tick-log';

/** Shared by the unit specs. */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

export const idResume = (id: string): ResumePoint => {
  const [ms, seq] = id.split('-').map(Number);
  return { kind: 'id', id: { ms, seq } };
};

/** A log that can report gaps (as a Redis tail that lost touch does). */
export class GappyLog extends MemoryTickLog {
  readonly gap = new Subject<ResetEvent>();
  override readonly gaps$ = this.gap.asObservable();
}

/** Holds the log's resume reads (as a slow Redis would) until the returned function is called. */
export function slowReads(log: MemoryTickLog): () => void {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const read = log.readAfter.bind(log);
  jest.spyOn(log as TickLog, 'readAfter').mockImplementation(async (point, pairs) => {
    const result = await read(point, pairs);
    await gate;
    return result;
  });
  return release;
}

/** A sink that records what it is given; `accepting` false plays a client that stopped reading. */
export class RecordingSink implements Sink {
  readonly transport = 'sse' as const;
  readonly messages: (StreamMessage | DeltaMessage)[] = [];
  accepting = true;
  ended: DisconnectReason[] = [];
  destroyed = 0;
  /** Whether `end` closes at once (a transport whose close completes later leaves it false). */
  closesOnEnd = true;
  subscriber!: Subscriber;

  bind(subscriber: Subscriber): void {
    this.subscriber = subscriber;
  }

  write(message: StreamMessage | DeltaMessage): boolean {
    this.messages.push(message);
    return this.accepting;
  }
  end(reason: DisconnectReason): void {
    this.ended.push(reason);
    if (this.closesOnEnd) this.subscriber.closed(reason);
  }
  destroy(): void {
    this.destroyed++;
    this.subscriber.closed('shutdown');
  }
  /** The client read everything. */
  drain(): void {
    this.accepting = true;
    this.subscriber.drained();
  }
  ticks(): Tick[] {
    return this.messages.flatMap((m) => (m.type === 'price' ? [m.tick] : []));
  }
  ids(): string[] {
    return this.ticks().map((t) => t.id);
  }
  resets(): ResetEvent[] {
    return this.messages.flatMap((m) => (m.type === 'reset' ? [m.reset] : []));
  }
  statuses(): PairStatus[] {
    return this.messages.flatMap((m) => (m.type === 'status' ? [m.status] : []));
  }
}

export const PAIRS = ['BTC-USD', 'ETH-USD', 'SOL-USD'];

/**
 * A hub on a memory log (or the one `makeLog` builds), a publish helper and a way to open
 * recording subscribers.
 */
export function hubSetup<L extends GappyLog = GappyLog>(
  env: Record<string, string> = {},
  now: () => number = Date.now,
  makeLog: (config: AppConfig, now: () => number) => L = (config, clock) => new GappyLog(config, clock) as L,
) {
  const config = loadConfig({ PAIRS: PAIRS.join(','), ...env });
  const log = makeLog(config, now);
  const metrics = new MetricsService();
  const stream = new PriceStreamService(log, config, metrics);
  const hub = new StreamHub(stream, config, metrics);
  hub.start();
  let price = 100;
  const publish = (pair: string, p = ++price) => log.publish({ pair, price: p, source: 'simulated', timestamp: new Date(now()).toISOString() });
  const released: DisconnectReason[] = [];
  const open = (pairs: readonly string[], resume?: ResumePoint, conflateMs?: number) => {
    const sink = new RecordingSink();
    const lease: Lease = { transport: 'sse', ip: '127.0.0.1', release: (reason) => released.push(reason), cancel: () => undefined };
    const sub = hub.open(sink, lease);
    sub.subscribe(pairs, resume, conflateMs);
    return { sink, sub };
  };
  return { config, log, metrics, stream, hub, publish, open, released };
}
