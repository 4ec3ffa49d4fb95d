import { Logger } from '@nestjs/common';
import { Subscription } from 'rxjs';
import type { Namespace, Socket } from 'socket.io';
import type { AppConfig } from '../config/app-config';
import type { DisconnectReason, Lease } from '../stream/connection-registry';
import { seenBefore, type PriceStreamService } from '../stream/price-stream.service';
import type { ClientToServerEvents, ServerToClientEvents, Tick } from '../shared/wire';
import type { SubscribeCommand } from './prices-payload';
import type { EventRateLimiter } from './event-rate-limiter';
import { idMs } from '../common/tick-id';
import type { MetricsService } from '../metrics/metrics.service';

/**
 * A per-socket catch-up subscription; it hands its pairs over to the rooms once it is live and
 * the channels have delivered the last id it gave (`lastId`; `behind`: a hand-over waits for that).
 */
type Replay = { sub?: Subscription; done: boolean; lastId: string | null; behind: boolean };
const LIVE = 'live';

/** What the server keeps per socket (in `socket.data`). */
export type SocketSession = {
  lease: Lease;
  limiter: EventRateLimiter;
  /** Who delivers each subscribed pair to this socket: its own replay, or the pair's room. */
  owners: Map<string, Replay | typeof LIVE>;
  replays: Set<Replay>;
  /** Packets a replay adds to the backlog at once; allowed on top of CLIENT_BUFFER_SIZE until it drains. */
  grace: number;
  /** Why the server ended the connection (for the lease's release and logs). */
  endReason?: DisconnectReason;
};

/** `auto`: the subscription asked for in the handshake auth, run once the socket is connected. */
export type SocketData = { session?: SocketSession; auto?: SubscribeCommand | null };
export type PricesSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type PricesNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export const roomOf = (pair: string): string => `pair:${pair}`;

/**
 * Packets engine.io holds for a socket that it could not hand to the transport yet: they pile
 * up once the kernel's buffers are full, i.e. when the client stops reading. engine.io keeps
 * the field private; it is the only measure of a socket's backlog in packets.
 */
export function socketBacklog(socket: PricesSocket): number {
  return (socket.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer?.length ?? 0;
}

/**
 * Live fan-out through one room per pair, and the hand-over from a socket's resume replay to
 * its rooms.
 *
 * One `PriceStreamService.subscribe` per pair broadcasts each live tick to the pair's room, so
 * a tick is encoded once per broadcast whatever the number of sockets. A socket that subscribes
 * first gets its own `subscribe(pairs, resume)`, which replays what it missed (or the reset and
 * the latest ticks) and then carries live ticks to that socket alone. When the replay is out
 * (a microtask after `ready`, by which time the service has emitted the replay and the ticks it
 * held back), the socket joins the rooms and drops its own subscription in one synchronous step.
 * Ticks reach both subscriptions in the same synchronous `next` call of the pair's channel, so
 * no tick can fall between the two paths: each tick before the step came by the replay path
 * (the socket was not in the room), each one after by the room (the replay is gone). Hence no
 * gap and no duplicate, and per-socket work is O(missed ticks) once, then nothing.
 */
export class PriceRooms {
  private readonly logger = new Logger(PriceRooms.name);
  private readonly feeds = new Subscription();

  constructor(
    private readonly ns: PricesNamespace,
    private readonly stream: PriceStreamService,
    private readonly config: AppConfig,
    /** Called once the live stream has ended (shutdown). */
    private readonly onEnded: () => void,
    private readonly metrics?: MetricsService,
  ) {}

  start(): void {
    // One reset for every socket in any price room (Socket.IO sends it once per socket).
    this.feeds.add(this.stream.gaps$.subscribe((reset) => this.ns.to(this.config.pairs.map(roomOf)).emit('reset', reset)));
    let ended = false;
    for (const pair of this.config.pairs) {
      this.feeds.add(
        this.stream.subscribe([pair]).subscribe({
          next: (event) => {
            if (event.type === 'price') this.broadcast(event.tick);
          },
          complete: () => {
            if (ended) return;
            ended = true;
            this.onEnded();
          },
        }),
      );
    }
  }

  stop(): void {
    this.feeds.unsubscribe();
  }

  /**
   * Subscribes a socket to the pairs it does not have yet (pairs it has are left alone, so
   * repeated calls never duplicate a tick). `onReady` runs before the first replayed tick.
   */
  subscribe(
    socket: PricesSocket,
    session: SocketSession,
    command: SubscribeCommand,
    onReady: (recovered: boolean) => void,
    onError: (err: unknown) => void,
  ): void {
    const fresh = command.pairs.filter((p) => !session.owners.has(p));
    if (fresh.length === 0) {
      onReady(command.resume !== undefined);
      return;
    }
    const replay: Replay = { done: false, lastId: seenBefore(command.resume), behind: false };
    session.replays.add(replay);
    for (const pair of fresh) session.owners.set(pair, replay);
    replay.sub = this.stream.subscribe(fresh, command.resume).subscribe({
      next: (event) => {
        if (event.type === 'ready') {
          session.grace += event.replayed + fresh.length + 1;
          onReady(event.recovered);
          queueMicrotask(() => this.goLive(socket, session, replay));
        } else if (event.type === 'reset') {
          socket.emit('reset', event.reset);
          replay.lastId = null;
        } else {
          if (session.owners.get(event.tick.pair) === replay) this.send(socket, session, event.tick);
          replay.lastId = event.tick.id;
          if (replay.behind) {
            replay.behind = false;
            queueMicrotask(() => this.goLive(socket, session, replay));
          }
        }
      },
      error: (err: unknown) => {
        this.drop(session, replay);
        onError(err);
      },
    });
    if (replay.done) replay.sub.unsubscribe();
  }

  /** Leaves the pairs' rooms or replays; returns the pairs the socket still has. */
  unsubscribe(socket: PricesSocket, session: SocketSession, pairs: readonly string[]): string[] {
    for (const pair of pairs) {
      if (session.owners.get(pair) === LIVE) void socket.leave(roomOf(pair));
      session.owners.delete(pair);
    }
    const owning = new Set(session.owners.values());
    for (const replay of session.replays) if (!owning.has(replay)) this.drop(session, replay);
    return this.subscribedPairs(session);
  }

  subscribedPairs(session: SocketSession): string[] {
    return this.config.pairs.filter((p) => session.owners.has(p));
  }

  /** On disconnect: the rooms are left by Socket.IO itself; the replays are ours. */
  release(session: SocketSession): void {
    for (const replay of session.replays) this.drop(session, replay);
    session.owners.clear();
  }

  /**
   * Cuts off a client that does not read: its transport is closed without flushing, which
   * socket.io-client answers by reconnecting (and resuming from its auth lastEventId).
   */
  cutOffSlow(socket: PricesSocket, session: SocketSession): void {
    if (session.endReason) return;
    session.endReason = 'slow';
    this.logger.warn({ msg: 'slow consumer disconnected', socket: socket.id, ip: session.lease.ip, backlog: socketBacklog(socket) });
    for (const room of socket.rooms) if (room !== socket.id) void socket.leave(room);
    this.release(session);
    socket.conn.close(true);
  }

  private goLive(socket: PricesSocket, session: SocketSession, replay: Replay): void {
    if (replay.done || !socket.connected) return;
    // A replay read from Redis can be ahead of the tail feeding the channels: until they have
    // delivered its last id, those ticks would come again through the rooms (see LiveFanout).
    if (!this.stream.hasDelivered(replay.lastId)) {
      replay.behind = true;
      return;
    }
    this.drop(session, replay);
    for (const [pair, owner] of session.owners) {
      if (owner !== replay) continue;
      session.owners.set(pair, LIVE);
      void socket.join(roomOf(pair));
    }
  }

  private drop(session: SocketSession, replay: Replay): void {
    replay.done = true;
    replay.sub?.unsubscribe();
    session.replays.delete(replay);
  }

  private send(socket: PricesSocket, session: SocketSession, tick: Tick): void {
    if (session.endReason || !socket.connected) return;
    if (this.isSlow(socket, session)) return this.cutOffSlow(socket, session);
    socket.emit('price', tick);
    this.metrics?.sent('socketio', idMs(tick.id));
  }

  /**
   * Whether one more packet would take the backlog past CLIENT_BUFFER_SIZE (plus what a replay
   * queued in one go: a replay is written synchronously and drains a moment later, so a large
   * resume over a slow link is not mistaken for a client that stopped reading).
   */
  private isSlow(socket: PricesSocket, session: SocketSession): boolean {
    const backlog = socketBacklog(socket);
    if (backlog < this.config.clientBufferSize) {
      session.grace = 0;
      return false;
    }
    return backlog >= this.config.clientBufferSize + session.grace;
  }

  private broadcast(tick: Tick): void {
    const room = roomOf(tick.pair);
    const members = this.ns.adapter.rooms.get(room);
    if (!members || members.size === 0) return;
    const slow: [PricesSocket, SocketSession][] = [];
    for (const id of members) {
      const socket = this.ns.sockets.get(id);
      const session = socket?.data.session;
      if (socket && session && this.isSlow(socket, session)) slow.push([socket, session]);
    }
    for (const [socket, session] of slow) this.cutOffSlow(socket, session);
    this.ns.to(room).emit('price', tick);
    this.metrics?.sent('socketio', idMs(tick.id), members.size - slow.length);
  }
}
