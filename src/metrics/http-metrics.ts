import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';

/** The `route` of every request no route template matched (unknown paths, the web client's files). */
export const UNMATCHED_ROUTE = 'unmatched';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const ROUTE = Symbol('price-stream.route');

/** A request as the histogram reads it: Node's IncomingMessage, or the stream door's (http/stream-door.ts). */
export type TimedRequest = { readonly method?: string };
type Routed = TimedRequest & { [ROUTE]?: string; route?: { path?: unknown } };

/** `2xx`…`5xx`; anything outside 100–599 (nothing was written) is `other`. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** A method label from a bounded set: the ones the service answers, else `OTHER`. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && METHODS.has(method) ? method : 'OTHER';
}

/** Names the route template of a request answered outside Express' router (the fast entries). */
export function markRoute(req: TimedRequest, template: string): void {
  (req as Routed)[ROUTE] = template;
}

/**
 * The route template a request was answered by: the one a fast entry marked, else the path of the
 * Express route that matched it (`/api/prices/:pair`, never the raw path), else `unmatched`
 * (no controller route: unknown paths, the web client's files, a request refused before routing).
 */
export function routeOf(req: TimedRequest): string {
  const r = req as Routed;
  const marked = r[ROUTE];
  if (marked !== undefined) return marked;
  const path = r.route?.path;
  // A wildcard is the catch-all route the request logger is mounted on, not a route that answered.
  return typeof path === 'string' && !path.includes('*') ? path : UNMATCHED_ROUTE;
}

/** The request-duration histogram, fed by the request logger and by the SSE entry. */
export class HttpMetrics {
  /** The histogram's child of each label set seen (bounded: methods × route templates × classes), looked up without hashing labels. */
  private readonly children = new Map<string, { observe(value: number): void }>();

  constructor(private readonly histogram: Histogram<'method' | 'route' | 'status_class'>) {}

  /** Starts timing now; the returned function records the request with its route and status. */
  start(): (req: TimedRequest, status: number) => void {
    const startedAt = performance.now();
    return (req, status) => this.child(methodLabel(req.method), routeOf(req), statusClass(status)).observe((performance.now() - startedAt) / 1000);
  }

  /** Records a request answered while it was handled (the fast routes), by its route template, `elapsedMs` after it started. */
  record(method: string | undefined, route: string, status: number, elapsedMs: number): void {
    this.child(methodLabel(method), route, statusClass(status)).observe(elapsedMs / 1000);
  }

  private child(method: string, route: string, status: string) {
    const key = `${method} ${status} ${route}`;
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = this.histogram.labels(method, route, status)));
    return child;
  }

  /** Times a response until it closes (answered, or the client went away). */
  observe(req: IncomingMessage, res: ServerResponse): void {
    const done = this.start();
    res.once('close', () => done(req, res.statusCode));
  }
}
