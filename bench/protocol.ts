/** Messages between the benchmark's parent process and its load-generating workers. */
import type { SlowTransport } from './clients';
import type { Counts, HistogramData } from './stats';

export const TRANSPORTS = ['sse', 'socketio', 'ws'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export type WorkerPlan = {
  worker: number;
  host: string;
  port: number;
  /** Source addresses to spread connections over (127.0.0.x). */
  addresses: string[];
  /** This worker's subscribers per transport, and where its first one sits globally (for address rotation). */
  counts: Record<Transport, number>;
  offset: number;
  pairs: string[];
  pairsPerSubscriber: number;
  ssePath: string;
  wsPath: string;
  socketIoPath: string;
  socketIoNamespace: string;
  timeField: string;
  /** --delta: every subscriber asks for deltas and applies them. */
  delta: boolean;
  /** --sio-auth: Socket.IO subscribers subscribe in the handshake's auth. */
  sioAuth: boolean;
  /** Connection attempts in flight at once during the ramp. */
  concurrency: number;
  /** With it, attempts start at this rate (per second, this worker's share), whether or not earlier ones were established: an open loop, as clients arriving on their own. */
  connectRate: number | null;
  churn: { minMs: number; maxMs: number } | null;
  reconnectDelayMs: number;
  /** Reconnect after --reconnect-delay-ms even when the server gave a hint. */
  ignoreHints: boolean;
  connectTimeoutMs: number;
  slow: { transport: SlowTransport; count: number; reads: boolean };
};

export type ToWorker =
  | { type: 'plan'; plan: WorkerPlan }
  | { type: 'phase'; index: number; startMs: number }
  | { type: 'open-slow' }
  | { type: 'stop'; endMs: number }
  | { type: 'window-ids'; fromMs: number; toMs: number }
  /**
   * --storm rolling: this worker's instance is being terminated and a load balancer no longer sends
   * to it. Each subscriber's next connection (once its stream ended) goes to `ports[g % ports.length]`
   * (g: its global index), the other instances, and stays there.
   */
  | { type: 'failover'; ports: number[] }
  /** `killAtMs`: when the harness killed a worker of the service (--kill-worker-at), to count the connections that dropped then. */
  | { type: 'evaluate'; expected: Record<string, string[]> | null; killAtMs: number | null }
  | { type: 'close' };

export type TransportResult = {
  target: number;
  /** Established at the start of the measurement, and at its end. */
  heldAtStart: number;
  heldAtEnd: number;
  /** Initial connections that failed, by reason (EMFILE, EADDRNOTAVAIL, http_429_..., ...). */
  connectFailures: Counts;
  /** Established streams that ended without being cut by the harness, by reason. */
  drops: Counts;
  reconnectFailures: Counts;
  cuts: number;
  reconnects: number;
  /** Reconnects that another worker served than the connection before (SSE only: X-Served-By). */
  movedWorker: number;
  resets: number;
  /** Ticks the measured subscribers should have had, had, and lacked. */
  expected: number;
  delivered: number;
  missing: number;
  subscribersWithMissing: number;
  duplicates: number;
  outOfOrder: number;
  /** Ticks received without an id (other servers): not checked for delivery. */
  withoutId: number;
  /** Ticks received after a reconnect that were published while disconnected. */
  replayed: number;
  missingExamples: string[];
  latency: HistogramData[];
  reconnectToOpen: HistogramData;
  reconnectToFirstTick: HistogramData;
  /** Bytes the subscribers' sockets received over the measured window (TCP payload: SSE from the response head, WebSocket and Socket.IO after the handshake), and the ticks they got in it (replays included). */
  wireBytes: number;
  wireTicks: number;
};

export type SlowResult = { target: number; opened: number; failures: Counts; cutByServer: number; bytesRead: number };

/** The subscribers whose stream dropped at or after the kill (of a service worker, or of the service: --storm), how many were established again, and how many are whole. */
export type StormCounts = {
  dropped: number;
  reestablished: number;
  /** From the drop to the stream being established again, per re-established subscriber. */
  dropToOpen: HistogramData;
  /**
   * Whole: every tick of its pairs in the window, published up to its re-establishment, that it
   * lacked at the drop has arrived, and it got no tick twice; from the drop to the last such
   * arrival (at least to the re-establishment). Only with the published ticks known.
   */
  whole: number;
  notWhole: number;
  dropToWhole: HistogramData;
  /**
   * From the signal (the kill, or the storm's SIGKILL or SIGTERM) to whole, per whole subscriber:
   * a bound that does not rest on when this process saw the drop (a busy generator sees it late).
   */
  signalToWhole: HistogramData;
  /** From the kill to the last re-establishment and to the last subscriber whole (ms); null when none. */
  lastOpenMs: number | null;
  lastWholeMs: number | null;
  notWholeExamples: string[];
};

export type KillResult = StormCounts & { byTransport: Record<Transport, StormCounts> };

export type WorkerResult = {
  transports: Record<Transport, TransportResult>;
  kill: KillResult | null;
  slow: SlowResult;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Event-loop delay of this worker during the measurement: a busy load generator inflates latency. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
};

export type FromWorker =
  | { type: 'progress'; opened: number; failed: number }
  | { type: 'connected'; opened: number; failed: number }
  | { type: 'slow-opened'; opened: number; failed: number }
  | { type: 'ids'; ticks: [string, string, number][] }
  | { type: 'result'; result: WorkerResult };
