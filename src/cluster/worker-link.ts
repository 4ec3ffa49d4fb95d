import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { Subject } from 'rxjs';
import type { AppConfig } from '../config/app-config';
import type { MetricsJson } from '../metrics/metrics.service';
import { MemoryTickLog } from '../stream/memory-tick-log';
import { SlotBroker, type SlotRefusal } from '../stream/slots';
import type { Confirmation } from '../stream/tick-log';
import type { Tick } from '../shared/wire';
import { isOurs, Requests, type RequestOf, type HelloAnswer, type MetricsAnswer, type TakeAnswer, type ToPrimary, type ToWorker } from './ipc';

/** How long a worker waits for the primary: a slot, the window, the whole service's metrics. */
export const PRIMARY_TIMEOUT_MS = 5_000;
/** How often a worker tells the primary how many connections it holds (for the primary's balancing). */
const LOAD_REPORT_MS = 500;

/**
 * A worker's copy of the primary's window (no REDIS_URL): it starts from the primary's snapshot
 * and keeps every tick the primary hands on, with the primary's ids, so that a resume reads the
 * same ticks on every worker. It writes none itself: only the primary polls.
 */
export class ReplicaTickLog extends MemoryTickLog {
  private readonly confirmed = new Subject<Confirmation>();
  override readonly confirmations$ = this.confirmed.asObservable();

  receive(tick: Tick): void {
    this.insert(tick);
  }

  confirm(confirmation: Confirmation): void {
    this.confirmed.next(confirmation);
  }

  override append(): Promise<Tick> {
    return Promise.reject(new Error('a worker does not write ticks: the primary polls'));
  }
}

/** MAX_STREAM_CONNECTIONS and MAX_STREAM_CONNECTIONS_PER_IP for the whole service: the primary counts. */
class ClusterSlots extends SlotBroker {
  constructor(private readonly link: WorkerLink) {
    super();
  }

  take(ip: string): Promise<SlotRefusal | null> {
    return this.link.request<TakeAnswer>({ ps: 'take', ip });
  }

  give(ip: string): void {
    this.link.send({ ps: 'give', ip });
  }
}

/**
 * A worker's side of the channel to the primary: the connections the primary hands over, the
 * ticks and confirmations it forwards (without REDIS_URL), connection slots, and metrics.
 */
export class WorkerLink {
  readonly slots: SlotBroker = new ClusterSlots(this);
  /** Engine.io session ids start with it, so that the primary routes a session's requests here. */
  readonly sessionPrefix = `w${cluster.worker?.id ?? 0}.`;
  private readonly requests = new Requests((msg) => this.send(msg as ToPrimary));
  private log: ReplicaTickLog | undefined;
  private server: Server | undefined;
  private closed = false;
  private open = 0;
  private answerJson: (() => Promise<MetricsJson>) | undefined;
  private loadTimer: NodeJS.Timeout | undefined;

  constructor() {
    process.on('message', (msg: unknown, handle: unknown) => {
      if (isOurs(msg)) this.receive(msg as ToWorker, handle);
    });
    process.once('disconnect', () => this.requests.failAll('the primary is gone'));
  }

  send(msg: ToPrimary): void {
    if (process.connected && process.send) process.send(msg);
  }

  request<T>(msg: RequestOf<ToPrimary>, timeoutMs = PRIMARY_TIMEOUT_MS): Promise<T> {
    return this.requests.request<T>(msg, timeoutMs);
  }

  /** Asks the primary for its window and keeps every tick it forwards from then on. */
  async replicaLog(config: AppConfig): Promise<ReplicaTickLog> {
    const snapshot = await this.request<HelloAnswer>({ ps: 'hello' });
    this.log = new ReplicaTickLog(config, Date.now, snapshot);
    return this.log;
  }

  /** This worker's metrics, for the primary to add up. */
  answerMetrics(json: () => Promise<MetricsJson>): void {
    this.answerJson = json;
  }

  /** The whole service's metrics (every process', summed by the primary). */
  gatherMetrics(): Promise<string> {
    return this.request<MetricsAnswer>({ ps: 'metrics' });
  }

  /**
   * Takes the connections the primary hands over into `server` (which does not listen itself),
   * then tells the primary it may route here.
   */
  serve(server: Server): void {
    this.server = server;
    // What listen() would start: the server's connection list, which enforces headersTimeout
    // and requestTimeout on every connection it is given.
    server.emit('listening');
    this.loadTimer = setInterval(() => this.send({ ps: 'load', open: this.open }), LOAD_REPORT_MS);
    this.loadTimer.unref();
    server.once('close', () => {
      this.closed = true;
      clearInterval(this.loadTimer);
    });
    this.send({ ps: 'ready' });
  }

  private receive(msg: ToWorker, handle: unknown): void {
    switch (msg.ps) {
      case 'conn':
        if (handle instanceof Socket) this.intake(handle, msg.head);
        return;
      case 'feed':
        for (const tick of msg.ticks) this.log?.receive(tick);
        for (const confirmation of msg.confirmations) this.log?.confirm(confirmation);
        return;
      case 'json':
        void this.reply(msg.n, this.answerJson ? this.answerJson() : Promise.resolve([]));
        return;
      case 'answer':
        this.requests.settle(msg.n, msg.value);
        return;
    }
  }

  private async reply(n: number, value: Promise<unknown>): Promise<void> {
    this.send({ ps: 'answer', n, value: await value.catch(() => null) });
  }

  /** A connection the primary accepted: the HTTP server parses it from the bytes the primary read on. */
  private intake(socket: Socket, head: string): void {
    const server = this.server;
    if (!server || this.closed) return void socket.destroy();
    this.open++;
    socket.once('close', () => this.open--);
    server.emit('connection', socket);
    socket.emit('data', Buffer.from(head, 'latin1'));
    socket.resume();
  }
}
