import type { ChildProcess } from 'node:child_process';
import { spawnMain } from './main-process';
import { freePort } from './redis';
import { openStream, type RawStream } from './sse';
import { waitFor } from './wait';

export type LogLine = Record<string, unknown> & { msg?: string; worker?: number };

/** `node dist/main.js` with WORKERS > 1, as an operator runs it. */
export type Cluster = {
  port: number;
  url: string;
  proc: ChildProcess;
  lines(): LogLine[];
  /** The pid of each worker slot, from the primary's newest `worker ready` line for it. */
  workerPids(): Map<number, number>;
  /** Opens an SSE stream; `worker` is the slot that serves it (X-Served-By). */
  stream(query: string, headers?: Record<string, string>): Promise<{ stream: RawStream; worker: number }>;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
};

export async function startCluster(env: Record<string, string>): Promise<Cluster> {
  const port = await freePort();
  const { proc, output, exited: exit } = spawnMain({
    PORT: String(port),
    HOST: '127.0.0.1',
    PAIRS: 'BTC-USD,ETH-USD',
    PRICE_SOURCES: 'simulated',
    KRAKEN_WS_URL: 'off',
    COINBASE_WS_URL: 'off',
    WORKERS: '2',
    ...env,
  });
  const exited = exit.then(({ code }) => code);
  const lines = (): LogLine[] =>
    output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  try {
    await waitFor(() => output().includes('"msg":"listening"') || proc.exitCode !== null, 60_000, () => output().slice(-2000));
  } catch (err) {
    proc.kill('SIGKILL'); // a service that did not come up is not left behind
    throw err;
  }
  if (proc.exitCode !== null) {
    // Its error and fatal lines in full, then the end of its output: the primary's reason to stop
    // can be followed by more than 2,000 characters of a worker's start-up lines.
    const errors = output()
      .split('\n')
      .filter((l) => /^\{"level":[56]0,/.test(l));
    throw new Error(`the service exited: ${[...errors, '…', output().slice(-2000)].join('\n')}`);
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    port,
    url,
    proc,
    lines,
    workerPids: () => {
      const pids = new Map<number, number>();
      for (const l of lines()) if (l.msg === 'worker ready') pids.set(Number(l.slot), Number(l.workerPid));
      return pids;
    },
    stream: async (query, headers = {}) => {
      const stream = await openStream(`${url}/api/prices/stream?${query}`, headers);
      const by = String(stream.headers['x-served-by'] ?? '');
      return { stream, worker: Number(/^worker-(\d+)$/.exec(by)?.[1] ?? NaN) };
    },
    exited,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}
