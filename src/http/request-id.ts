import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A caller's X-Request-Id is kept when it is short and plain; otherwise a new one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** With workers, the worker that answers (its slot, 1..WORKERS), in every response's X-Served-By. */
let servedBy: string | undefined;

/** Called once by a worker process at start-up. */
export function setServedBy(worker: number): void {
  servedBy = `worker-${worker}`;
}

/** The request's id (the caller's X-Request-Id or a new one), echoed in the response's X-Request-Id. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const sent = req.headers['x-request-id'];
  const id = typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
  res.setHeader('X-Request-Id', id);
  if (servedBy !== undefined) res.setHeader('X-Served-By', servedBy);
  return id;
}
