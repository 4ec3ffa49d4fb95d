import { closeSync, constants, mkdtempSync, openSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { killStillRunning, spawnMain } from './support/main-process';
import { connectOutcome } from './support/sockets';
import { startApp, type TestApp } from './support/app';
import { freePort } from './support/redis';
import { waitFor, within } from './support/wait';

/** Preloads test/support/trace-module-loads.js: a line for each file loaded, and for each request of @nestjs/swagger. */
const TRACE_LOADS = `--require ${JSON.stringify(path.join(__dirname, 'support', 'trace-module-loads.js'))}`;

/** The built service on the simulated source, push feeds off, on 127.0.0.1. */
const SIMULATED = { HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off' };

describe('start-up', () => {
  // Each test stops its service in its own `finally`, which a test jest times out never reaches.
  afterEach(killStillRunning);

  it('lists the sources actually in the chain in the listening line (coindesk left out without its key)', async () => {
    const port = await freePort();
    const { proc, output, exited } = spawnMain({ PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'coindesk,simulated', SIMULATED_SEED: '1234', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off' });
    try {
      await waitFor(() => output().includes('"msg":"listening"'), 15_000, output);
      const lines = output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'listening')).toMatchObject({ sources: ['simulated'], pushFeeds: [], simulatedSeed: 1234 });
      // A start without the key is normal: one info line (pino level 30), no warning.
      const leftOut = lines.filter((l) => String(l.msg).startsWith('coindesk is left out'));
      expect(leftOut.map((l) => l.level)).toEqual([30]);
      expect(lines.filter((l) => typeof l.level === 'number' && l.level >= 40)).toEqual([]);
    } finally {
      proc.kill('SIGTERM');
      expect((await exited).code).toBe(0);
    }
  }, 30_000);

  it('takes its port before it loads the app: a request made while it starts is answered once it is up', async () => {
    const port = await freePort();
    const { proc, output, exited } = spawnMain({ PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off' });
    // Every wait is bounded, the exit too, and together they fit in the test's 60 s (12 + 10 + 5 +
    // 10 s), so that a slow or stuck start fails with the service's output rather than with
    // jest's timeout (CI, beside the browser test, hit a 30 s one twice).
    let socket: Socket | undefined;
    let exit: Awaited<typeof exited> | 'late';
    // What happened to the held connection, with times, for a failure's message.
    const t0 = Date.now();
    const events: string[] = [];
    const note = (what: string) => events.push(`${Date.now() - t0} ms ${what}`);
    const status = () => `(exit: ${proc.exitCode ?? proc.signalCode ?? 'still running'}; connection: ${events.join(', ') || 'none'}): ${output()}`;
    try {
      let closed: Promise<void> = Promise.resolve();
      socket = await (async () => {
        // Each attempt has its own deadline (a dropped SYN is resent only after 1 s).
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
          if (proc.exitCode !== null || proc.signalCode !== null) break;
          const s = await new Promise<Socket | undefined>((resolve) => {
            const c = connect(port, '127.0.0.1', () => {
              c.setTimeout(0);
              resolve(c);
            });
            c.setTimeout(2000, () => (c.destroy(), resolve(undefined)));
            c.once('error', () => resolve(undefined));
          });
          if (s) {
            // Listened for from the start: a connection closed before the request is written
            // (the 50 ms below) must not leave the test waiting for a 'close' that has come.
            closed = new Promise((resolve) => s.once('close', () => (note('closed'), resolve())));
            s.on('error', (err) => note(`error ${err.message}`));
            s.on('end', () => note('end'));
            note('connected');
            return s;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        throw new Error(`never connected within 10 s ${status()}`);
      })();
      // Connected, and the app is still being built for a while (loading it takes hundreds of ms).
      expect(output()).not.toContain('"msg":"listening"');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(output()).not.toContain('"msg":"listening"');
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      socket.write('GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      note('request written');
      // A held request never answered fails here with the service's output, after 10 s however
      // the connection behaves (a socket's own timeout is one of idleness, and none once closed).
      const late = (await within(closed, 10_000)) === 'late';
      if (late || answer === '') throw new Error(`the held request had ${late ? `${answer === '' ? 'no answer' : 'an answer'} and no close within 10 s` : 'no answer before its connection closed'} ${status()}`);
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      // The held connection is served as the server takes the port over; the listening line
      // follows a moment later (and reaches this pipe later still).
      await waitFor(() => output().includes('"msg":"listening"'), 5000, output);
    } finally {
      socket?.destroy();
      proc.kill('SIGTERM');
      exit = await within(exited, 10_000);
      if (exit === 'late') proc.kill('SIGKILL');
    }
    if (exit === 'late') throw new Error(`no exit within 10 s of SIGTERM: ${output()}`);
    expect(exit.code).toBe(0);
  }, 60_000);

  describe("inherited listening sockets (systemd's socket activation: LISTEN_FDS, LISTEN_PID)", () => {
    /** A listening socket made here, its fd for a child; this process closes its own copy once the child has it. */
    const listening = async (): Promise<{ server: Server; port: number; fd: number }> => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      return { server, port: (server.address() as { port: number }).port, fd };
    };
    /** The start-up line, once it is out. */
    const listeningLine = async (output: () => string): Promise<Record<string, unknown>> => {
      await waitFor(() => output().includes('"msg":"listening"'), 15_000, output);
      return JSON.parse(output().split('\n').find((l) => l.includes('"msg":"listening"'))!) as Record<string, unknown>;
    };

    it("serves the sockets it is handed instead of binding PORT; its exit closes only its own copy", async () => {
      const held = await listening();
      const port = await freePort();
      // The supervisor's copy, as systemd keeps its socket unit's: a process that holds it and never accepts.
      const holder = spawn('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', held.fd] });
      const { proc, output, exited } = spawnMain({ ...SIMULATED, PORT: String(port), LISTEN_FDS: '1' }, [held.fd]);
      // This process accepts nothing on it from now on: the service's copy serves.
      await new Promise((resolve) => held.server.close(resolve));
      try {
        expect(await listeningLine(output)).toMatchObject({ url: `http://127.0.0.1:${held.port}`, inheritedSockets: 1 });
        expect((await fetch(`http://127.0.0.1:${held.port}/health/live`)).status).toBe(200);
        expect(await connectOutcome(port)).toBe('ECONNREFUSED');
        proc.kill('SIGTERM');
        expect((await exited).code).toBe(0);
        // Stopped, the service let go of its copy only: a connection made now waits in the socket's
        // queue for the next process (a restart), where a port of its own would refuse it.
        expect(await connectOutcome(held.port)).toBe('connected');
        holder.kill('SIGKILL');
        await new Promise((resolve) => holder.once('exit', resolve));
        expect(await connectOutcome(held.port)).toBe('ECONNREFUSED');
      } finally {
        proc.kill('SIGKILL');
        holder.kill('SIGKILL');
      }
    }, 30_000);

    it('leaves sockets meant for another process (LISTEN_PID) alone and binds PORT', async () => {
      const port = await freePort();
      const { proc, output, exited } = spawnMain({ ...SIMULATED, PORT: String(port), LISTEN_FDS: '1', LISTEN_PID: '1' });
      try {
        const line = await listeningLine(output);
        expect(line).toMatchObject({ url: `http://127.0.0.1:${port}` });
        expect(line.inheritedSockets).toBeUndefined();
      } finally {
        proc.kill('SIGTERM');
        expect((await exited).code).toBe(0);
      }
    }, 30_000);

    it('refuses them with WORKERS > 1, and an fd that is not a listening socket, naming it (exit 78 both)', async () => {
      const held = await listening();
      try {
        const workers = spawnMain({ ...SIMULATED, PORT: String(held.port), WORKERS: '2', LISTEN_FDS: '1' }, [held.fd]);
        expect((await workers.exited).code).toBe(78);
        expect(workers.output()).toContain('LISTEN_FDS="1": inherited listening sockets are served by one process (WORKERS=1)');
      } finally {
        await new Promise((resolve) => held.server.close(resolve));
      }
      const file = path.join(tmpdir(), `startup-not-a-socket-${process.pid}`);
      const fd = openSync(file, 'w');
      try {
        const notSocket = spawnMain({ ...SIMULATED, PORT: String(await freePort()), LISTEN_FDS: '1' }, [fd]);
        expect((await notSocket.exited).code).toBe(78);
        expect(notSocket.output()).toContain('the inherited socket at fd 3 (LISTEN_FDS) cannot be served: EINVAL; each must be a listening socket');
        expect(notSocket.output()).not.toContain('"msg":"listening"');
      } finally {
        closeSync(fd);
        unlinkSync(file);
      }
    }, 30_000);
  });

  it("refuses a bad setting with zod's English message from the bundle (which keeps zod's English locale only), exit 78", async () => {
    const { output, exited } = spawnMain({ PORT: String(await freePort()), LOG_LEVEL: 'loud' });
    expect((await exited).code).toBe(78);
    expect(output()).toContain('LOG_LEVEL="loud": Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"');
  });

  describe('a log reader that is gone or stuck', () => {
    // pino's default stream retried the shutdown's last lines every 100 ms, without end, inside
    // process.exit: a SIGTERM never ended the process (nor a worker whose primary had gone).
    it.each([['one process', '1'], ['WORKERS=2', '2']])('gone (its pipe closed: EPIPE): %s still exits 0 on SIGTERM within seconds', async (_name, workers) => {
      const port = await freePort();
      const { proc, output, exited } = spawnMain({ ...SIMULATED, PORT: String(port), WORKERS: workers });
      try {
        await waitFor(() => output().includes('"msg":"listening"'), 15_000, output);
        proc.stdout!.destroy();
        // Logged with the reader gone: a request's access line (the output ends there), then the shutdown's lines.
        expect((await fetch(`http://127.0.0.1:${port}/api/prices/BTC-USD`)).status).toBeLessThan(500);
        proc.kill('SIGTERM');
        expect(await within(exited, 8_000)).toMatchObject({ code: 0 });
        expect(output()).toContain('"msg":"log output ended: its reader is gone","code":"EPIPE"');
      } finally {
        proc.kill('SIGKILL');
      }
    }, 30_000);

    it('stuck (a full pipe it never reads, opened blocking): exits 0 on SIGTERM after giving the last lines ~2 s', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'startup-stuck-reader-'));
      const fifo = path.join(dir, 'out');
      execFileSync('mkfifo', [fifo]);
      // A reader that never reads, and a pipe already full (whatever its size); the service's end
      // opened blocking, as a shell's `| reader` is.
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const filler = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      const chunk = Buffer.alloc(4096, 'x');
      for (;;) {
        try {
          writeSync(filler, chunk);
        } catch {
          break; // EAGAIN: full
        }
      }
      closeSync(filler);
      const writer = openSync(fifo, constants.O_WRONLY);
      const port = await freePort();
      const { proc, output, exited } = spawnMain({ ...SIMULATED, PORT: String(port), LOG_LEVEL: 'debug' }, [], writer);
      closeSync(writer);
      try {
        // Its start-up's lines and an access line per request wait.
        await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/api/prices/BTC-USD`).then((r) => r.status, () => 0)) !== 0, 15_000, output);
        for (let i = 0; i < 20; i++) await fetch(`http://127.0.0.1:${port}/api/prices/BTC-USD`);
        // Still serving while its output waits.
        expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
        proc.kill('SIGTERM');
        expect(await within(exited, 8_000)).toMatchObject({ code: 0 });
        expect(output()).toContain('"msg":"log output given up at exit","code":"EAGAIN"');
      } finally {
        proc.kill('SIGKILL');
        closeSync(reader);
        rmSync(dir, { recursive: true, force: true });
      }
    }, 30_000);
  });

  it('reads the service from one bundled file (dist/service.js), not module by module, and keeps its code cache once it listens', async () => {
    const port = await freePort();
    const cacheDir = mkdtempSync(path.join(tmpdir(), 'compile-cache-'));
    const { proc, output, exited } = spawnMain({ ...SIMULATED, PORT: String(port), NODE_OPTIONS: TRACE_LOADS, NODE_COMPILE_CACHE: cacheDir });
    try {
      await waitFor(() => output().includes('"msg":"listening"'), 15_000, output);
      expect((await fetch(`http://127.0.0.1:${port}/api/pairs`)).status).toBe(200);
      const loaded = [...output().matchAll(/^\[trace\] load (file:\S+)$/gm)].map((m) => m[1]);
      const root = `file://${path.resolve(__dirname, '..')}/`;
      const ours = loaded.filter((url) => !url.includes('/node_modules/')).map((url) => url.slice(root.length));
      // The entry, the compile cache it turns on first, and what runs the bundle (dist/service.js,
      // compiled by bundle-loader.ts itself with its code cache, not through Node's loader): no
      // module of src/ on its own.
      expect(ours).toEqual(['dist/main.js', 'dist/compile-cache.js', 'dist/bundle-loader.js']);
      // What stays outside the bundle (scripts/bundle.mjs) is pino's few files: it finds its
      // transport's worker file from its own folder. Nest, rxjs, Socket.IO and the rest come from
      // the bundle (without it a start loaded ~1,500 files).
      const outside = loaded.filter((url) => url.includes('/node_modules/'));
      expect(outside.filter((url) => /\/node_modules\/(@nestjs|rxjs|socket\.io|engine\.io|ioredis|zod|express|ws)\//.test(url))).toEqual([]);
      expect(outside.filter((url) => url.includes('/node_modules/pino/')).length).toBeGreaterThan(0);
      expect(outside.length).toBeLessThan(60);
      // The bundle's own code cache (bundle-loader.ts), written a few seconds after it listened: the next start reads it.
      const caches = () => readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((name) => /^price-stream-bundle-[0-9a-f]{8}$/.test(path.basename(name)));
      await waitFor(() => caches().length > 0, 10_000, () => 'no price-stream-bundle-* cache file');
      expect(caches()).toHaveLength(1);
    } finally {
      proc.kill('SIGTERM');
      expect((await exited).code).toBe(0);
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('loads @nestjs/swagger only when the OpenAPI document is first asked for, and serves it then', async () => {
    const port = await freePort();
    const traced = '[trace] @nestjs/swagger resolved';
    const { proc, output, exited } = spawnMain({
      PORT: String(port),
      HOST: '127.0.0.1',
      PRICE_SOURCES: 'simulated',
      KRAKEN_WS_URL: 'off',
      COINBASE_WS_URL: 'off',
      NODE_OPTIONS: TRACE_LOADS,
    });
    try {
      await waitFor(() => output().includes('"msg":"listening"'), 15_000, output);
      expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/api/pairs`)).status).toBe(200);
      expect(output()).not.toContain(traced);
      const doc = (await (await fetch(`http://127.0.0.1:${port}/docs-json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/prices/stream', '/api/prices/{pair}']));
      expect(output()).toContain(traced);
      const ui = await fetch(`http://127.0.0.1:${port}/docs`);
      expect([ui.status, ui.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    } finally {
      proc.kill('SIGTERM');
      expect((await exited).code).toBe(0);
    }
  }, 30_000);

  describe('the simulated source', () => {
    const apps: TestApp[] = [];
    afterEach(async () => {
      await Promise.all(apps.splice(0).map((a) => a.close()));
    });
    const firstPrice = async (env: Record<string, string>): Promise<number> => {
      const t = await startApp({ PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '100', ...env });
      apps.push(t);
      // The walk's first step is the oldest tick in the window (polls go on meanwhile: the latest
      // price may already be a later step when the test first looks).
      let price = 0;
      await waitFor(async () => {
        price = (await t.stream.history('BTC-USD', 0, 1)).ticks[0]?.price ?? 0;
        return price > 0;
      }, 5000);
      return price;
    };

    it('starts from a random seed: two starts walk differently', async () => {
      const [a, b] = [await firstPrice({}), await firstPrice({})];
      expect(apps[0].config.simulatedSeed).not.toBe(apps[1].config.simulatedSeed);
      expect(a).not.toBe(b);
    });

    it('replays the same walk with SIMULATED_SEED', async () => {
      expect(await firstPrice({ SIMULATED_SEED: '7' })).toBe(await firstPrice({ SIMULATED_SEED: '7' }));
    });
  });
});
