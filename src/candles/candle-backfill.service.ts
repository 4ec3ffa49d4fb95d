import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../config/app-config';
import { PriceStreamService } from '../stream/price-stream.service';
import { CandleStore } from './candle-store';
import { checkHistory, coinbaseExchangeHistory, krakenHistory, simulatedHistory, type HistorySource } from './history-sources';

/** First retry delay of a failed backfill; doubles up to SOURCE_BACKOFF_MAX_MS. */
export const BACKFILL_RETRY_FIRST_MS = 500;
const BACKFILL_ATTEMPTS = 6;
/** How long a backfill waits for the first live price of a pair, to check the seam against it. */
const REFERENCE_WAIT_MS = 10_000;
const LEADER_CHECK_MS = 500;

/** The history sources of the enabled price sources, in PRICE_SOURCES order. */
export function historySources(config: AppConfig): HistorySource[] {
  const http = { timeoutMs: config.sourceTimeoutMs, maxBytes: config.sourceMaxBodyBytes };
  const out: HistorySource[] = [];
  for (const name of config.priceSources) {
    if (name === 'kraken') out.push(krakenHistory(config.sourceUrls.kraken, http));
    else if (name === 'coinbase') out.push(coinbaseExchangeHistory(config.coinbaseExchangeUrl, http));
    else if (name === 'simulated') out.push(simulatedHistory(config.simulatedSeed));
  }
  return out;
}

/**
 * Fills the candle store with the exchanges' recent one-minute candles at start, so that the
 * chart has hours of history at once. Runs where ticks are written: the only process without
 * Redis, the leader with Redis (it starts when this instance becomes leader). Never awaited by
 * the start-up: readiness does not wait for it. Each source and pair is tried on its own and
 * retried with doubling delays; a backfill only fills minutes the store has no candle for.
 */
@Injectable()
export class CandleBackfill implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(CandleBackfill.name);
  private readonly abort = new AbortController();
  private running: Promise<void> | null = null;
  sources: HistorySource[];

  constructor(
    private readonly config: AppConfig,
    private readonly store: CandleStore,
    private readonly stream: PriceStreamService,
  ) {
    this.sources = historySources(config);
  }

  /** Whether a backfill runs in this process (a worker without Redis has the primary's ticks, not its own). */
  get enabled(): boolean {
    return this.config.candleBackfill && !(this.config.workerIndex !== undefined && !this.config.redis);
  }

  onApplicationBootstrap(): void {
    if (this.enabled && this.sources.length > 0) this.running = this.run().catch(() => undefined);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.abort.abort(new Error('shutting down'));
    await this.running;
  }

  /** Resolves once every source has been tried for every pair (done or given up). */
  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!this.store.writes) await sleep(LEADER_CHECK_MS, undefined, { signal });
    await Promise.all(this.config.pairs.flatMap((pair) => this.sources.map((source) => this.backfill(source, pair, signal))));
  }

  private async backfill(source: HistorySource, pair: string, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; attempt <= BACKFILL_ATTEMPTS; attempt++) {
      try {
        const reference = await this.reference(pair, signal);
        const now = Date.now();
        const minutes = checkHistory(source.name, pair, await source.minutes(pair, now, reference, signal), now, reference, this.config.maxJumpPct);
        const added = await this.store.fill(pair, minutes);
        this.logger.log({ msg: 'candles backfilled', source: source.name, pair, received: minutes.length, added });
        return;
      } catch (err) {
        if (signal.aborted) return;
        const delay = Math.min(this.config.sourceBackoffMaxMs, BACKFILL_RETRY_FIRST_MS * 2 ** (attempt - 1));
        const error = err instanceof Error ? err.message : String(err);
        if (attempt === BACKFILL_ATTEMPTS) {
          this.logger.warn({ msg: 'candle backfill given up', source: source.name, pair, attempts: attempt, error });
          return;
        }
        this.logger.warn({ msg: 'candle backfill failed; retrying', source: source.name, pair, attempt, retryInMs: delay, error });
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
      }
    }
  }

  /** The live price to check the seam against: the latest tick, waited for a little after a start. */
  private async reference(pair: string, signal: AbortSignal): Promise<number | undefined> {
    const until = Date.now() + REFERENCE_WAIT_MS;
    for (;;) {
      const latest = this.stream.latest(pair);
      if (latest) return latest.price;
      if (Date.now() >= until || signal.aborted) return undefined;
      await sleep(200, undefined, { signal }).catch(() => undefined);
    }
  }
}
