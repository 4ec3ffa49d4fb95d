import { Module, type DynamicModule, type Type } from '@nestjs/common';
import type { Tick } from '../shared/wire';
import type { TickDraft } from '../stream/tick-log';

/**
 * Where the ingest hands its prices on: the next stage of the pipeline, and the Nest token the
 * ingest injects (it knows no stream module). In the application PriceStreamService is the port
 * (StreamModule provides it); in the cluster's primary the same service over the
 * PrimaryTickLog, without the hub the workers serve from (src/cluster/primary.module.ts).
 */
export abstract class PublishPort {
  /**
   * Appends a tick if the price (or the bid/ask) differs from the pair's latest one: the new
   * tick, or null when nothing changed. Either way the pair counts as freshly confirmed.
   */
  abstract publish(draft: TickDraft): Promise<Tick | null>;
  /** An upstream confirmed the pair's price at `atMs` (a tick that waits for MIN_TICK_INTERVAL_MS, say). */
  abstract confirm(pair: string, atMs: number): void;
  /** The pair's latest tick: what a new price is judged against. */
  abstract latest(pair: string): Tick | undefined;
}

/**
 * Makes the module that provides PublishPort visible to the ingest. PollerModule is imported by
 * the modules that use the poller and must stay one instance, so it takes no parameter; the
 * application registers `PublishPortModule.from(StreamModule)` once, the primary its own.
 */
@Module({})
export class PublishPortModule {
  static from(provider: Type<unknown>): DynamicModule {
    return { module: PublishPortModule, global: true, imports: [provider], exports: [provider] };
  }
}
