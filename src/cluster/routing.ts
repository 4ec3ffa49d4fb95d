import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { writeRawError } from '../http/raw-response';
import { ownSocket } from '../http/socket-guard';
import { readFirstLine } from './first-line';

/** File descriptors a worker keeps for itself (Redis, upstreams, its own files) beside its connections. */
const FD_RESERVE = 500;
/** A request line longer than this is routed by what it holds so far (the server answers 414 past 8 KiB anyway). */
const REQUEST_LINE_MAX = 8192;
/** The request line names the engine.io session; the session id names its worker (WorkerLink.sessionPrefix). */
const SESSION = /[?&]sid=w(\d+)\./;

/**
 * Accepted connections whose request line has not come yet, per client address: a client that
 * opens connections and drips into them (or sends nothing) holds at most `perAddress` of them,
 * each for at most the head deadline. A full address gets 429 TOO_MANY_CONNECTIONS at once.
 */
export class PendingConnections {
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly perAddress: number) {}

  take(address: string): boolean {
    const n = this.byAddress.get(address) ?? 0;
    if (n >= this.perAddress) return false;
    this.byAddress.set(address, n + 1);
    return true;
  }

  give(address: string): void {
    const n = (this.byAddress.get(address) ?? 1) - 1;
    if (n > 0) this.byAddress.set(address, n);
    else this.byAddress.delete(address);
  }

  /** Pending connections of one address (tests, metrics). */
  of(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }
}

/** The front door's limits: the head deadline (absolute, from the accept) and the pending connections per address. */
export type FrontDoor = { headTimeoutMs: number; pending: PendingConnections };

/**
 * Reads a connection's first bytes (from a server made with `pauseOnConnect`) up to the end of
 * the request line, pauses it and hands them on: the connection then goes to the HTTP server
 * here or is relayed to the worker of its engine.io session (relay.ts). It stays in this
 * process either way, so what it reads after the request line waits in its stream's buffer for
 * whoever reads it next. The request line must arrive within the head deadline from the
 * accept, however slowly it drips.
 */
export function firstBytes(socket: Socket, then: (head: Buffer) => void, door: FrontDoor): void {
  ownSocket(socket);
  const address = socket.remoteAddress ?? '';
  if (!door.pending.take(address)) {
    return writeRawError(socket, { statusCode: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections from this address are still sending their request' }, { 'Retry-After': '1' });
  }
  // Up to the end of the request line (it names the session), or REQUEST_LINE_MAX bytes.
  readFirstLine(socket, REQUEST_LINE_MAX, door.headTimeoutMs, then, () => door.pending.give(address));
}

/** The cluster worker id in the engine.io session id a request names (Socket.IO long-polling and its upgrade), if any. */
export function sessionOwner(head: Buffer): number | undefined {
  const lineEnd = head.indexOf(13);
  const line = head.toString('latin1', 0, lineEnd === -1 ? Math.min(head.length, REQUEST_LINE_MAX) : lineEnd);
  const m = SESSION.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** Connections one worker may hold: its open-files limit less what it keeps for itself. */
export function workerCapacity(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return Math.max(1, Number(m[1]) - FD_RESERVE);
  } catch {
    // not Linux: no limit known
  }
  return Infinity;
}
