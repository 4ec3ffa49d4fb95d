import { randomUUID } from 'node:crypto';
import type { StreamRequest, StreamResponse } from './socket-response';

type WithHeaders = Pick<StreamRequest, 'headers'>;

/** A caller's X-Request-Id is kept when it is short and plain; otherwise a new one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** With workers, the worker that answers (its slot, 1..WORKERS), in every response's X-Served-By. */
let servedBy: string | undefined;

/** Called once by a worker process at start-up. */
export function setServedBy(worker: number): void {
  servedBy = `worker-${worker}`;
}

/** The request's id (the caller's X-Request-Id or a new one), echoed in the response's X-Request-Id. */
export function requestId(req: WithHeaders, res: Pick<StreamResponse, 'setHeader'>): string {
  const id = requestIdOf(req);
  res.setHeader('X-Request-Id', id);
  if (servedBy !== undefined) res.setHeader('X-Served-By', servedBy);
  return id;
}

/** The request's id alone (a caller that writes its headers at once: add `idHeaders`). */
export function requestIdOf(req: WithHeaders): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
}

/** The headers `requestId` sets, appended to a header list. */
export function idHeaders(id: string, headers: string[]): void {
  headers.push('X-Request-Id', id);
  if (servedBy !== undefined) headers.push('X-Served-By', servedBy);
}
