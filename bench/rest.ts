/** --rest: drives REST routes with wrk (one route at a time, keep-alive connections) and reads its report. */
import { execFile } from 'node:child_process';

export type RestOptions = { routes: string[]; connections: number; threads: number; durationS: number; warmupS: number };

export type RestRouteResult = {
  route: string;
  /** The wrk command line of the measured run. */
  command: string;
  requests: number;
  seconds: number;
  reqPerSec: number | null;
  /** Latency percentiles and maximum in ms (wrk --latency), over every request of the measured run. */
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** Responses outside 2xx and 3xx (a 429 of the rate limit counts here). */
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Response bytes read (headers and bodies) per request. */
  bytesPerRequest: number | null;
  error?: string;
};

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** `4.80ms`, `612.00us`, `1.20s` as ms; null when it is none of those. */
export function wrkTime(s: string): number | null {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s.trim());
  return m ? Number(m[1]) * UNITS[m[2]] : null;
}

/** What `wrk --latency` prints, as figures. */
export function parseWrk(out: string): Omit<RestRouteResult, 'route' | 'command'> {
  const pct = (p: number): number | null => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out);
    return m ? wrkTime(m[1]) : null;
  };
  const latency = /^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(out);
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read/m.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const requests = total ? Number(total[1]) : 0;
  return {
    requests,
    seconds: total ? (Number(total[2]) * UNITS[total[3]]) / 1000 : 0,
    reqPerSec: rps ? Number(rps[1]) : null,
    p50Ms: pct(50),
    p90Ms: pct(90),
    p99Ms: pct(99),
    maxMs: latency ? wrkTime(latency[3]) : null,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: sock ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) } : { connect: 0, read: 0, write: 0, timeout: 0 },
    bytesPerRequest: total && requests > 0 ? (Number(total[4]) * SIZES[total[5]]) / requests : null,
  };
}

function wrk(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`wrk ${args.join(' ')}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'wrk is not on PATH (apt-get install wrk)' : `${err.message} ${stderr}`.trim()}`));
      else resolve(stdout);
    });
  });
}

/** Each route in turn: a warm-up run (not reported), then the measured one. A route wrk cannot run is reported with its error. */
export async function runRest(baseUrl: string, o: RestOptions, log: (line: string) => void): Promise<RestRouteResult[]> {
  const out: RestRouteResult[] = [];
  const threads = String(Math.min(o.threads, o.connections));
  for (const route of o.routes) {
    const url = `${baseUrl}${route}`;
    const args = ['-t', threads, '-c', String(o.connections), '-d', `${o.durationS}s`, '--latency', url];
    const command = `wrk ${args.join(' ')}`;
    try {
      if (o.warmupS > 0) await wrk(['-t', threads, '-c', String(o.connections), '-d', `${o.warmupS}s`, url], (o.warmupS + 30) * 1000);
      const r = { route, command, ...parseWrk(await wrk(args, (o.durationS + 30) * 1000)) };
      out.push(r);
      log(`rest ${route}: ${r.reqPerSec?.toFixed(0) ?? '?'} req/s, p50 ${r.p50Ms ?? '?'} ms, p99 ${r.p99Ms ?? '?'} ms${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}`);
    } catch (err) {
      const error = (err as Error).message;
      log(`rest ${route}: ${error}`);
      out.push({ route, command, ...parseWrk(''), error });
    }
  }
  return out;
}
