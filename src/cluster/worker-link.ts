import { Logger } from '@nestjs/common';
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import { Subject } from 'rxjs';
import type { AppConfig } from '../config/app-config';
import type { MetricsJson } from '../metrics/metrics.service';
import { MemoryTickLog } from '../stream/memory-tick-log';
import type { SlotBroker } from '../stream/slots';
import { ClusterSlots } from './cluster-slots';
import type { Confirmation } from '../stream/tick-log';
import type { Tick } from '../shared/wire';
import { answerWhenDone, isOurs, Requests, type FullAnswer, type RequestOf, type HelloAnswer, type MetricsAnswer, type TakeAnswer, type ToPrimary, type ToWorker } from './ipc';
import { relay, relayAddress, relayServer, RELAY_KEY_ENV } from './relay';
import { firstBytes, sessionOwner, workerCapacity, type FrontDoor } from './routing';
import { SharedDoor } from './worker-door';
import { listen } from '../util/listen';
import { resumeUnlessUpgraded } from '../http/stream-door';

/** How long a worker waits for the primary: a slot, the window, the whole service's metrics. */
export const PRIMARY_TIMEOUT_MS = 5_000;
/** This process' cluster worker id: engine.io session ids name it (0 outside a cluster). */
const WORKER_ID = cluster.worker?.id ?? 0;
const TRANSPORT = /[?&]transport=(polling|websocket)\b/;
/** The relay key the primary gave this worker (relay.ts), if it is a well-formed one. */
const RELAY_KEY = /^[0-9a-f]{32}$/.test(process.env[RELAY_KEY_ENV] ?? '') ? process.env[RELAY_KEY_ENV] : undefined;
// Read once: no child process, crash report or environment dump of this worker gets the key.
delete process.env[RELAY_KEY_ENV];

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
 * A worker's side of the service: it accepts on the shared port (worker-door.ts), relays a
 * connection of another worker's engine.io session to that worker and serves the ones relayed
 * to it (relay.ts), and over the channel to the primary gets the ticks and confirmations
 * (without REDIS_URL), connection slots, metrics, and whether it may stop accepting when full.
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
  private readonly logger = new Logger('Cluster');
  private door: SharedDoor | undefined;
  private relays: NetServer | undefined;
  private closed = false;
  /** This worker's sockets to the workers it relays connections to, and who waits for them to end. */
  private readonly relaying = new Set<Socket>();
  private relaysEnded: (() => void) | undefined;
  private answerJson: (() => Promise<MetricsJson>) | undefined;
  private stopHandler: ((signal: NodeJS.Signals, level: number) => void) | undefined;

  constructor() {
    process.on('message', (msg: unknown) => {
      if (isOurs(msg)) this.receive(msg as ToWorker);
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
   * `server` (which does not listen itself) with each connection once its request line is read:
   * a request of another worker's engine.io session is relayed to that worker. Takes relayed
   * connections on its own relay socket. Then tells the primary this worker serves.
   */
  async serve(server: Server, port: number, host: string, backlog: number, door: FrontDoor): Promise<void> {
    this.server = server;
    // What listen() would start: the server's connection list, which enforces headersTimeout
    // and requestTimeout on every connection it is given.
    server.emit('listening');
    if (RELAY_KEY) {
      const relays = relayServer(RELAY_KEY, (socket, head) => {
        this.door?.hold(socket);
        this.intake(socket, head);
      });
      // exclusive: this worker's own socket (without it the cluster module would have the primary
      // listen for it); the shared port's backlog, as a burst of reconnects may come through it too.
      await listen(relays, { path: relayAddress(WORKER_ID, RELAY_KEY), exclusive: true, backlog });
      // An accept that failed (EMFILE): that connection is closed, the next one may succeed.
      relays.on('error', (err) => this.logger.debug({ msg: 'accepting a relayed connection failed', err: err.message }));
      this.relays = relays;
    }
    const shared = new SharedDoor({
      port,
      host,
      backlog,
      capacity: workerCapacity(),
      accept: (socket) => firstBytes(socket, (head) => this.route(socket, head), door),
      mayClose: () => this.request<FullAnswer>({ ps: 'full' }),
      reopened: () => this.send({ ps: 'open' }),
    });
    await shared.listen();
    this.door = shared;
    server.once('close', () => {
      this.closed = true;
      this.stopAccepting();
      this.relays?.close();
    });
    this.send({ ps: 'ready' });
  }

  /** The shutdown began: the other workers take the new connections (and once all stopped, nobody). */
  stopAccepting(): void {
    this.door?.stop();
  }

  /**
   * The end of this worker's shutdown: the connections it relays end when their owners end
   * them in their own shutdown (a stream's reconnect hint passes through here first); waits for
   * that for at most `withinMs`, then cuts the rest.
   */
  async relaysClosed(withinMs: number): Promise<void> {
    if (this.relaying.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, withinMs));
        this.relaysEnded = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const s of this.relaying) s.destroy();
  }

  /**
   * A request of another worker's engine.io session is relayed to it. When that worker cannot be
   * reached (it exited, or is shutting down) the request is served here: engine.io answers 400
   * "Session ID unknown", on which the client opens a new session at once (a 503 would only
   * make it wait for a retry of a session that is gone).
   */
  private route(socket: Socket, head: Buffer): void {
    const owner = sessionOwner(head);
    if (owner === undefined || owner === WORKER_ID || !RELAY_KEY || this.closed) return this.intake(socket, head);
    this.logger.debug({ msg: "relaying a connection to its session's worker", to: owner, transport: TRANSPORT.exec(head.toString('latin1', 0, 200))?.[1] });
    relay(socket, head, relayAddress(owner, RELAY_KEY), RELAY_KEY, {
      opened: (upstream) => {
        this.door?.hold(upstream);
        this.relaying.add(upstream);
        upstream.once('close', () => {
          this.relaying.delete(upstream);
          if (this.relaying.size === 0) this.relaysEnded?.();
        });
      },
      unreachable: (code) => {
        // A gone worker's sessions are gone with it (ECONNREFUSED); a busy one is worth a warning.
        if (code === 'ECONNREFUSED' || code === 'ENOENT') this.logger.debug({ msg: "the session's worker is gone; serving here", to: owner });
        else this.logger.warn({ msg: "the session's worker could not be reached; serving here", to: owner, code });
        this.intake(socket, head);
      },
    });
  }

  private receive(msg: ToWorker): void {
    switch (msg.ps) {
      case 'reopen':
        this.door?.reopen();
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

  /** A connection for this worker's HTTP server (accepted here, or relayed to it): the server parses it from the bytes read so far on. */
  private intake(socket: Socket, head: Buffer): void {
    const server = this.server;
    if (!server || this.closed) return void socket.destroy();
    server.emit('connection', socket);
    if (head.length > 0) socket.emit('data', head);
    resumeUnlessUpgraded(socket);
  }
}
