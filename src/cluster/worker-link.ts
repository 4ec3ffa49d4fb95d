import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { createServer, Socket, type Server as NetServer } from 'node:net';
import { Subject } from 'rxjs';
import type { AppConfig } from '../config/app-config';
import type { MetricsJson } from '../metrics/metrics.service';
import { MemoryTickLog } from '../stream/memory-tick-log';
import type { SlotBroker } from '../stream/slots';
import { ClusterSlots } from './cluster-slots';
import type { Confirmation } from '../stream/tick-log';
import type { Tick } from '../shared/wire';
import { firstBytes, holdForHandover, sessionOwner, workerCapacity, type FrontDoor } from './routing';
import { answerWhenDone, isOurs, Requests, type RequestOf, type HelloAnswer, type MetricsAnswer, type TakeAnswer, type ToPrimary, type ToWorker } from './ipc';

/** How long a worker waits for the primary: a slot, the window, the whole service's metrics. */
export const PRIMARY_TIMEOUT_MS = 5_000;
/** This process' cluster worker id: engine.io session ids name it (0 outside a cluster). */
const WORKER_ID = cluster.worker?.id ?? 0;
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

  received(confirmation: Confirmation): void {
    this.confirmed.next(confirmation);
  }

  override append(): Promise<Tick> {
    return Promise.reject(new Error('a worker does not write ticks: the primary polls'));
  }
}

/**
 * A worker's side of the service: it accepts on the shared port, and over the channel to the
 * primary it passes on or takes over connections of another worker's engine.io session, gets
 * the ticks and confirmations (without REDIS_URL), connection slots, and metrics.
 */
export class WorkerLink {
  readonly slots: SlotBroker = new ClusterSlots({
    request: (msg, late) => this.request<TakeAnswer>(msg, PRIMARY_TIMEOUT_MS, late),
    send: (msg) => this.send(msg),
  });
  /** Engine.io session ids start with it, so that every request of a session reaches this worker (see `route`). */
  readonly sessionPrefix = `w${WORKER_ID}.`;
  private readonly requests = new Requests((msg) => this.send(msg as ToPrimary));
  private log: ReplicaTickLog | undefined;
  /**
   * Feeds that came before the replica exists. The primary sends the window and then every
   * turn's feed; Node hands each message of one read to its own nextTick, all before the hello's
   * answer reaches the code awaiting it, so the first feeds can come "before" the window here.
   */
  private early: Extract<ToWorker, { ps: 'feed' }>[] | undefined;
  private server: Server | undefined;
  private listener: NetServer | undefined;
  private closed = false;
  private open = 0;
  private readonly capacity = workerCapacity();
  private answerJson: (() => Promise<MetricsJson>) | undefined;
  private stopHandler: ((signal: NodeJS.Signals, level: number) => void) | undefined;
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

  request<T>(msg: RequestOf<ToPrimary>, timeoutMs = PRIMARY_TIMEOUT_MS, late?: (value: T) => void): Promise<T> {
    return this.requests.request<T>(msg, timeoutMs, late);
  }

  /** Asks the primary for its window and keeps every tick it forwards from then on. */
  async replicaLog(config: AppConfig): Promise<ReplicaTickLog> {
    this.early = [];
    const snapshot = await this.request<HelloAnswer>({ ps: 'hello' });
    const log = new ReplicaTickLog(config, Date.now, snapshot);
    // A tick in both the window and an early feed is kept once (an id not past the newest is ignored).
    for (const feed of this.early) this.apply(log, feed);
    this.early = undefined;
    this.log = log;
    return log;
  }

  private apply(log: ReplicaTickLog, feed: Extract<ToWorker, { ps: 'feed' }>): void {
    for (const tick of feed.ticks) log.receive(tick);
    for (const confirmation of feed.confirmations) log.received(confirmation);
  }

  /** The primary's stop requests (see `stop` in ipc.ts). */
  onStop(handler: (signal: NodeJS.Signals, level: number) => void): void {
    this.stopHandler = handler;
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
   * Accepts on the port (the socket the cluster module shares among the workers) and feeds
   * `server` (which does not listen itself) with each connection once its first bytes are read:
   * a request of another worker's engine.io session, or one past this worker's open-files
   * limit, goes to the primary to be passed on. Then tells the primary this worker serves.
   */
  async serve(server: Server, port: number, host: string, backlog: number, door: FrontDoor): Promise<void> {
    this.server = server;
    // What listen() would start: the server's connection list, which enforces headersTimeout
    // and requestTimeout on every connection it is given.
    server.emit('listening');
    const listener = createServer({ pauseOnConnect: true }, (socket) => firstBytes(socket, (head) => this.route(socket, head), door));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ port, host, backlog }, resolve);
    });
    this.loadTimer = setInterval(() => this.send({ ps: 'load', open: this.open }), LOAD_REPORT_MS);
    this.loadTimer.unref();
    server.once('close', () => {
      this.closed = true;
      this.stopAccepting();
      clearInterval(this.loadTimer);
    });
    this.send({ ps: 'ready' });
  }

  /** The shutdown began: the other workers take the new connections (and once all stopped, nobody). */
  stopAccepting(): void {
    this.listener?.close();
    this.listener = undefined;
  }

  private route(socket: Socket, head: Buffer): void {
    const owner = sessionOwner(head);
    const elsewhere = owner !== undefined && owner !== WORKER_ID;
    if (!elsewhere && this.open < this.capacity) return this.intake(socket, head);
    holdForHandover(socket);
    process.send?.({ ps: 'forward', head: head.toString('latin1'), to: elsewhere ? owner : null } satisfies ToPrimary, socket, { keepOpen: false }, (err: Error | null) => {
      if (err) socket.destroy();
    });
  }

  private receive(msg: ToWorker, handle: unknown): void {
    switch (msg.ps) {
      case 'conn':
        if (handle instanceof Socket) this.intake(handle, Buffer.from(msg.head, 'latin1'));
        return;
      case 'feed':
        if (this.log) this.apply(this.log, msg);
        else this.early?.push(msg);
        return;
      case 'stop':
        this.stopHandler?.(msg.signal, msg.level);
        return;
      case 'json':
        return answerWhenDone((m) => this.send(m), msg.n, this.answerJson ? this.answerJson() : Promise.resolve([]));
      case 'answer':
        this.requests.settle(msg.n, msg.value);
        return;
    }
  }

  /** A connection for this worker (accepted here, or passed on by the primary): the HTTP server parses it from the bytes read so far on. */
  private intake(socket: Socket, head: Buffer): void {
    const server = this.server;
    if (!server || this.closed) return void socket.destroy();
    this.open++;
    socket.once('close', () => this.open--);
    server.emit('connection', socket);
    socket.emit('data', head);
    socket.resume();
  }
}
