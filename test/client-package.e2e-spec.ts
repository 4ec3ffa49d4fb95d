import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HistoryResponse, Transport } from '../src/shared/wire';
import { TRANSPORTS } from '../src/shared/wire';
import { spawnMain, type MainProcess } from './support/main-process';
import { startProxy, type CuttingProxy } from './support/proxy';
import { freePort } from './support/redis';
import { sleep, waitFor } from './support/wait';

/**
 * The client library as a stranger gets it: `npm pack` of packages/client, installed into new
 * projects that have nothing else (the Socket.IO one adds socket.io-client), a strict TypeScript
 * program compiled against it with moduleResolution bundler and node16, then run against the
 * built service (dist/main.js, simulated source) through a proxy that cuts the network: on each
 * transport every tick arrives once, in order, with none missing, and the resume is reported.
 * Needs Node 22+ (the package's engines; test/jest-e2e.config.js runs it only there).
 */
const ROOT = join(__dirname, '..');
const PACKAGE = join(ROOT, 'packages', 'client');
const FIXTURE = join(__dirname, 'fixtures', 'client-package');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

type Line =
  | { kind: 'price'; id: string; pair: string; price: number; source: string }
  | { kind: 'status'; state: string }
  | { kind: 'resumed'; missed: number }
  | { kind: 'reset' }
  | { kind: 'error'; code: string | null; status: number | null; message: string; isError: boolean }
  | { kind: 'refused-event'; message: string };

function sh(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} in ${cwd} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A new project with the tarball (and `extra` packages), the program and its two tsconfigs. */
function project(dir: string, tarball: string, extra: string[]): void {
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  sh('npm', ['install', '--prefer-offline', '--no-package-lock', tarball, ...extra], dir);
  writeFileSync(join(dir, 'program.ts'), readFileSync(join(FIXTURE, 'program.ts')));
  for (const name of ['tsconfig.bundler.json', 'tsconfig.node16.json']) {
    const config = JSON.parse(readFileSync(join(FIXTURE, name), 'utf8')) as { compilerOptions: Record<string, unknown> };
    // Node's own types (console, process) from the repository, so that the project installs no more than it must.
    Object.assign(config.compilerOptions, { typeRoots: [join(ROOT, 'node_modules', '@types')], types: ['node'] });
    writeFileSync(join(dir, name), JSON.stringify(config));
  }
}

type Program = { lines(): Line[]; output(): string; prices(): Extract<Line, { kind: 'price' }>[]; stop(): Promise<void> };

function runProgram(dir: string, baseUrl: string, transport: Transport, pairs?: string): Program {
  const child: ChildProcess = spawn(process.execPath, [join(dir, 'out', 'program.js'), baseUrl, transport, ...(pairs ? [pairs] : [])], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
  const lines = (): Line[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  return {
    lines,
    output: () => `program over ${transport}:\n${out}\nstderr:\n${err}`,
    prices: () => lines().filter((l): l is Extract<Line, { kind: 'price' }> => l.kind === 'price'),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const order = (id: string): [number, number] => {
  const [ms, seq] = id.split('-').map(Number);
  return [ms ?? NaN, seq ?? NaN];
};
const before = (a: string, b: string): boolean => {
  const [am, as] = order(a);
  const [bm, bs] = order(b);
  return am < bm || (am === bm && as < bs);
};

describe('the packed client library (npm pack, a new project, strict TypeScript, the built service)', () => {
  let work: string;
  let tarball: string;
  let service: MainProcess;
  let port: number;
  let proxy: CuttingProxy;
  const plain = (): string => join(work, 'plain');
  const withIo = (): string => join(work, 'socketio');

  beforeAll(async () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
    if (!existsSync(join(PACKAGE, 'dist', 'index.d.ts'))) throw new Error('packages/client/dist is missing: run npm run build first');
    work = mkdtempSync(join(tmpdir(), 'client-package-'));
    const [packed] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], PACKAGE)) as { filename: string; files: { path: string }[] }[];
    if (!packed) throw new Error('npm pack gave nothing');
    expect(packed.files.map((f) => f.path).sort()).toEqual(['LICENSE', 'README.md', 'dist/index.d.ts', 'dist/index.js', 'package.json']);
    tarball = join(work, packed.filename);
    const ioVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'socket.io-client', 'package.json'), 'utf8')) as { version: string }).version;
    project(plain(), tarball, []);
    project(withIo(), tarball, [`socket.io-client@${ioVersion}`]);

    port = await freePort();
    service = spawnMain({ PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '100', PAIRS: 'BTC-USD,ETH-USD', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off' });
    await waitFor(() => service.output().includes('"msg":"listening"'), 20_000, service.output);
    proxy = await startProxy(port);
  }, 240_000);

  afterAll(async () => {
    await proxy?.close();
    if (service) {
      service.proc.kill('SIGTERM');
      await service.exited;
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs with nothing else for SSE and WebSocket: the project holds the package alone', () => {
    const installed = JSON.parse(readFileSync(join(plain(), 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(installed.dependencies)).toEqual(['@price-stream/client']);
    expect(existsSync(join(plain(), 'node_modules', 'socket.io-client'))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(plain(), 'node_modules', '@price-stream', 'client', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ type: 'module', exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } }, peerDependenciesMeta: { 'socket.io-client': { optional: true } } });
    expect(manifest.dependencies).toBeUndefined();
  });

  it('compiles a strict program with typed events (an unknown event refused) under moduleResolution bundler and node16', () => {
    for (const dir of [plain(), withIo()]) {
      sh(process.execPath, [TSC, '-p', 'tsconfig.bundler.json'], dir);
      sh(process.execPath, [TSC, '-p', 'tsconfig.node16.json'], dir);
      expect(existsSync(join(dir, 'out', 'program.js'))).toBe(true);
    }
    // No `any` written anywhere in the program (a type annotation, an assertion or a type argument).
    expect(readFileSync(join(FIXTURE, 'program.ts'), 'utf8')).not.toMatch(/(:|\bas|<|\|)\s*any\b/);
  }, 120_000);

  for (const transport of TRANSPORTS) {
    const dir = (): string => (transport === 'socketio' ? withIo() : plain());

    it(`gets every tick once, in order, across a network cut over ${transport}, and reports the resume`, async () => {
      const p = runProgram(dir(), proxy.url, transport);
      try {
        await waitFor(() => p.prices().length >= 5, 15_000, p.output);
        expect(p.lines()).toContainEqual({ kind: 'refused-event', message: 'price-stream: no event "tick"; the events are price, reset, status, freshness, resumed, error (6 events)' });
        proxy.cut();
        await waitFor(() => p.lines().some((l) => l.kind === 'status' && l.state === 'reconnecting'), 5000, p.output);
        // Ticks go on meanwhile (10 a second per pair): the program misses them, then gets them back.
        await sleep(700);
        proxy.restore();
        await waitFor(() => p.lines().some((l) => l.kind === 'resumed'), 15_000, p.output);
        const resumedAt = p.prices().length;
        await waitFor(() => p.prices().length >= resumedAt + 3, 10_000, p.output);
      } finally {
        proxy.restore();
        await p.stop();
      }
      const prices = p.prices();
      const ids = prices.map((t) => t.id);
      for (let i = 1; i < ids.length; i += 1) expect(before(ids[i - 1] ?? '', ids[i] ?? '')).toBe(true);
      const resumed = p.lines().find((l): l is Extract<Line, { kind: 'resumed' }> => l.kind === 'resumed');
      expect(resumed?.missed).toBeGreaterThan(0);
      expect(p.lines().filter((l) => l.kind === 'reset' || l.kind === 'error')).toEqual([]);

      // None missing: the service's history between the first and the last id, both pairs, is what the program printed.
      const first = ids[0] ?? '';
      const last = ids.at(-1) ?? '';
      const history = await Promise.all(
        ['BTC-USD', 'ETH-USD'].map(async (pair) => (await (await fetch(`http://127.0.0.1:${port}/api/prices/${pair}/history?limit=1000`)).json()) as HistoryResponse),
      );
      const expected = history
        .flatMap((h) => h.updates)
        .map((t) => t.id)
        .filter((id) => !before(id, first) && !before(last, id))
        .sort((a, b) => (before(a, b) ? -1 : 1));
      expect(ids).toEqual(expected);
    }, 60_000);

    it(`stops at UNSUPPORTED_PAIR over ${transport} and reports it as an error with the code`, async () => {
      const p = runProgram(dir(), proxy.url, transport, 'DOGE-USD');
      try {
        await waitFor(() => p.lines().some((l) => l.kind === 'error'), 10_000, p.output);
      } finally {
        await p.stop();
      }
      expect(p.lines().find((l) => l.kind === 'error')).toMatchObject({ code: 'UNSUPPORTED_PAIR', isError: true });
      expect(p.lines().filter((l) => l.kind === 'status' && l.state === 'reconnecting')).toEqual([]);
    }, 30_000);
  }

  it('says clearly that socket.io-client is missing when a project without it chooses socketio', async () => {
    const p = runProgram(plain(), proxy.url, 'socketio');
    try {
      await waitFor(() => p.lines().some((l) => l.kind === 'error'), 10_000, p.output);
    } finally {
      await p.stop();
    }
    expect(p.lines().find((l) => l.kind === 'error')).toMatchObject({
      code: 'SOCKET_IO_CLIENT_MISSING',
      message: 'the socketio transport needs the socket.io-client package: npm install socket.io-client',
    });
  }, 30_000);
});
