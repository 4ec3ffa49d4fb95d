import { Logger } from '@nestjs/common';
import { createServer, type Server, type Socket } from 'node:net';
import { writeRawError } from '../http/raw-response';
import { ownSocket } from '../http/socket-guard';
import { listen } from '../util/listen';

/** After the primary said no (every other worker is full or gone), a full worker asks again no sooner than this. */
const ASK_AGAIN_MS = 1_000;

export type DoorOptions = {
  port: number;
  host: string;
  backlog: number;
  /** Sockets this worker may hold (its open-files limit less a reserve: routing.ts `workerCapacity`). */
  capacity: number;
  /** A connection it takes (paused, counted until it closes). */
  accept(socket: Socket): void;
  /** Asks the primary whether this worker may stop accepting: true when another worker accepts. */
  mayClose(): Promise<boolean>;
  /** Tells the primary that this worker accepts again. */
  reopened(): void;
};

/**
 * A worker's door on the port the workers share (the cluster module's SCHED_NONE: each worker
 * accepts for itself, the kernel hands a connection to one that is waiting) and its open-files
 * capacity. It counts every socket the worker holds: the ones it accepted, the relayed ones it
 * serves, and each relay's socket to another worker (`hold`). A hundredth short of capacity (what
 * it accepts while the primary answers still fits; measured: 2 of 38,000 refused when it asked
 * only at capacity, at 2,000 connections a second) it closes its
 * listening socket, so that the kernel gives new connections to the other workers, once the
 * primary says another still accepts (when every worker stops listening, the cluster module
 * closes the port itself: connections would be refused, those in the backlog reset). It listens
 * again when it holds a twentieth of its capacity less, or when the primary asks (no other
 * accepts any more). A connection it accepts while full is answered 503 TOO_MANY_CONNECTIONS
 * with Retry-After: 1.
 */
export class SharedDoor {
  private readonly logger = new Logger('Cluster');
  private listener: Server | undefined;
  private held = 0;
  private readonly reopenAt: number;
  /** It asks to close a hundredth before capacity: connections accepted while the primary answers still fit. */
  private readonly closeAt: number;
  /** Closed because full (it listens again below `reopenAt`). */
  private full = false;
  private asking = false;
  private refusedAt = -Infinity;
  private stopped = false;

  constructor(private readonly options: DoorOptions) {
    this.reopenAt = options.capacity - Math.max(1, Math.ceil(options.capacity / 20));
    this.closeAt = Math.max(this.reopenAt + 1, options.capacity - Math.ceil(options.capacity / 100));
  }

  /** Sockets held now (tests, metrics). */
  get holding(): number {
    return this.held;
  }

  /** Whether it is listening on the shared port. */
  get open(): boolean {
    return this.listener !== undefined;
  }

  /** Starts listening; rejects when the port cannot be had. */
  async listen(): Promise<void> {
    const listener = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.onConnection(socket));
    await listen(listener, { port: this.options.port, host: this.options.host, backlog: this.options.backlog });
    // accept() failing (EMFILE past the reserve) must not stop the process: the next accept may succeed.
    listener.on('error', (err) => this.logger.warn({ msg: 'accepting on the shared port failed', err: err.message }));
    this.listener = listener;
  }

  /** Counts a socket of this worker until it closes. */
  hold(socket: Socket): void {
    this.held++;
    socket.once('close', () => this.release());
    if (this.held >= this.closeAt) this.closeWhenFull();
  }

  /** The shutdown began: no new connection, and no reopening. */
  stop(): void {
    this.stopped = true;
    this.closeListener();
  }

  /** The primary asks this worker to listen again: no other worker accepts. */
  reopen(): void {
    if (this.full) void this.relisten();
  }

  private onConnection(socket: Socket): void {
    ownSocket(socket);
    if (this.held >= this.options.capacity) {
      this.hold(socket);
      return writeRawError(socket, { statusCode: 503, code: 'TOO_MANY_CONNECTIONS', message: 'every worker holds as many connections as it may open files; try again later or elsewhere' }, { 'Retry-After': '1' });
    }
    this.hold(socket);
    this.options.accept(socket);
  }

  private release(): void {
    this.held--;
    if (this.full && !this.stopped && this.held <= this.reopenAt) void this.relisten();
  }

  private closeWhenFull(): void {
    if (this.full || this.asking || this.stopped || !this.listener || Date.now() - this.refusedAt < ASK_AGAIN_MS) return;
    this.asking = true;
    void this.options
      .mayClose()
      .catch(() => false)
      .then((may) => {
        this.asking = false;
        if (!may) {
          this.refusedAt = Date.now();
          return;
        }
        if (this.stopped) return; // it stopped meanwhile: it accepts nothing, and says so by leaving
        if (this.held <= this.reopenAt) return this.options.reopened();
        this.full = true;
        this.closeListener();
        this.logger.warn({ msg: 'at capacity: stopped accepting on the shared port', holding: this.held, capacity: this.options.capacity });
      });
  }

  private async relisten(): Promise<void> {
    this.full = false;
    if (this.stopped || this.listener) return;
    try {
      await this.listen();
      if (this.stopped) return this.closeListener();
      this.options.reopened();
      this.logger.log({ msg: 'accepting on the shared port again', holding: this.held });
    } catch (err) {
      // Not expected (the port is the cluster's): the other workers keep serving, and the next close tries again.
      this.full = true;
      this.logger.error({ msg: 'could not listen on the shared port again', err: (err as Error).message });
    }
  }

  private closeListener(): void {
    this.listener?.close();
    this.listener = undefined;
  }
}
