import { MetricsService, type MetricsJson } from '../metrics/metrics.service';
import { answerWhenDone, type JsonAnswer } from './ipc';
import type { Member, Members, MessageOf, Seam } from './members';

/** How long a metrics scrape waits for each worker. */
const METRICS_TIMEOUT_MS = 2_000;

/**
 * The metrics of the whole service: a worker scraped on /metrics asks here (`metrics`), and gets
 * every process' figures summed (the primary's own and every serving worker's that answers in
 * time, each asked with `json`).
 */
export class PrimaryMetrics implements Seam<'metrics'> {
  constructor(
    private readonly members: Members,
    private readonly metrics: MetricsService,
  ) {}

  receive(member: Member, msg: MessageOf<'metrics'>): void {
    answerWhenDone(this.members.answer(member), msg.n, this.gather(), '');
  }

  /** Every process' metrics (the primary's own, every worker's that answers in time), summed. */
  private async gather(): Promise<string> {
    const parts = await Promise.all([
      this.metrics.json(),
      ...this.members.ready().map((m) => m.requests.request<JsonAnswer>({ ps: 'json' }, METRICS_TIMEOUT_MS).catch(() => [] as MetricsJson)),
    ]);
    return MetricsService.aggregate(parts.filter((p) => Array.isArray(p) && p.length > 0));
  }
}
