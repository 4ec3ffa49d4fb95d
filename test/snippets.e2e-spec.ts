import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WS_PATH, type Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';
import { startProxy, type CuttingProxy } from './support/proxy';
import { sleep, waitFor } from './support/wait';

/**
 * The code snippets of README.md and docs/api.md, run as they are written (`node` on the
 * markdown's text, the service's address swapped for the test's) against the real service,
 * through a proxy that cuts the network: a snippet that stops resuming, or stops running,
 * fails here.
 */
const ROOT = join(__dirname, '..');
const DOCS = ['README.md', 'docs/api.md'] as const;
const MARKER = /<!-- snippet: ([\w-]+) \(run by test\/snippets\.e2e-spec\.ts\) -->\n```(\w+)\n([\s\S]*?)\n```/g;

type Snippet = { name: string; lang: string; code: string; file: string };

function snippets(): Snippet[] {
  return DOCS.flatMap((file) => [...readFileSync(join(ROOT, file), 'utf8').matchAll(MARKER)].map(([, name = '', lang = '', code = '']) => ({ name, lang, code, file })));
}

/** One snippet of each name: the same text wherever it is shown. */
function snippet(name: string): Snippet {
  const all = snippets().filter((s) => s.name === name);
  if (all.length === 0) throw new Error(`no snippet "${name}" in ${DOCS.join(', ')}`);
  for (const s of all) expect(`${s.file}:\n${s.code}`).toBe(`${s.file}:\n${all[0]?.code}`);
  return all[0] as Snippet;
}

type Run = { lines: () => string[]; /** Everything it printed, stderr too: the message of a failed wait. */ output: () => string; prices: () => { id: string; pair: string; price: number }[]; stop(): void };

function run(command: string, args: string[], url: string): Run {
  const child: ChildProcess = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
  const lines = (): string[] => out.split('\n').filter((l) => l !== '');
  return {
    lines,
    output: () => `stdout of the snippet against ${url}:\n${out}\nstderr:\n${err}`,
    prices: () =>
      lines()
        .map((l) => /^(\d+-\d+) ([A-Z]+-[A-Z]+) ([\d.]+)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ id: m[1] ?? '', pair: m[2] ?? '', price: Number(m[3]) })),
    stop: () => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    },
  };
}

/** The snippet's text with the test service's address in place of localhost:8080. */
const against = (code: string, proxy: CuttingProxy): string => code.replaceAll('localhost:8080', proxy.url.replace('http://', ''));

describe('README.md and docs/api.md snippets', () => {
  let t: TestApp;
  let proxy: CuttingProxy;
  let running: Run | undefined;

  beforeEach(async () => {
    // SSE_RETRY_MS: the EventSource snippet's own reconnect delay, short for the test.
    t = await startApp({ SSE_RETRY_MS: '200' });
    proxy = await startProxy(t.port);
  });
  afterEach(async () => {
    running?.stop();
    running = undefined;
    await proxy.close();
    await t.close();
  });

  it('marks every snippet it runs, and shows each in both files', () => {
    const names = (file: string) => new Set(snippets().filter((s) => s.file === file).map((s) => s.name));
    for (const file of DOCS) expect([...names(file)].sort()).toEqual(expect.arrayContaining(['eventsource', 'sdk', 'socketio', 'websocket']));
    expect(names('README.md').has('curl-resume')).toBe(true);
  });

  it('names the WebSocket path of the wire contract', () => {
    expect(snippet('websocket').code).toContain(WS_PATH);
  });

  /**
   * Starts the snippet, lets it print the latest tick and two live ones, cuts the network while
   * three more are published, then checks that it printed every tick once, in order.
   */
  const resumesAcrossACut = async (code: string): Promise<Run> => {
    const [first] = await t.publishAll('BTC-USD', [100]);
    const r = run(process.execPath, ['--input-type=module', '-e', against(code, proxy)], proxy.url);
    running = r;
    await waitFor(() => r.prices().length === 1, 10_000, r.output);
    const live = [...(await t.publishAll('ETH-USD', [10])), ...(await t.publishAll('BTC-USD', [101]))];
    await waitFor(() => r.prices().length === 3, 5000, r.output);

    proxy.cut();
    await sleep(300);
    const missed = [...(await t.publishAll('BTC-USD', [102, 103])), ...(await t.publishAll('ETH-USD', [11]))];
    await sleep(300);
    proxy.restore();

    const all: Tick[] = [first as Tick, ...live, ...missed];
    await waitFor(() => r.prices().length >= all.length, 15_000, r.output);
    await sleep(200); // a duplicate would show up by now
    expect(r.prices()).toEqual(all.map(({ id, pair, price }) => ({ id, pair, price })));
    expect(r.lines().filter((l) => l.startsWith('reset'))).toEqual([]);
    return r;
  };

  it('the library snippet resumes after a drop and says how many ticks it missed', async () => {
    // `@price-stream/client` resolves as it would in an app: the workspace's node_modules link to packages/client and its build.
    if (!existsSync(join(ROOT, 'packages', 'client', 'dist', 'index.js'))) throw new Error('packages/client/dist is missing: run npm run build first');
    const r = await resumesAcrossACut(snippet('sdk').code);
    await waitFor(() => r.lines().includes('resumed 3'), 5000, r.output);
    expect(r.lines().filter((l) => l.startsWith('status'))).toEqual(expect.arrayContaining(['status connecting', 'status live', 'status reconnecting']));
  });

  for (const name of ['eventsource', 'socketio', 'websocket']) {
    it(`the raw ${name} snippet resumes after a drop: every missed tick once, in order`, async () => {
      await resumesAcrossACut(snippet(name).code);
    }, 40_000);
  }

  it('the README resume command replays the ticks after the id it picks, then goes on live', async () => {
    const ticks = await t.publishAll('BTC-USD', [200, 201, 202, 203]);
    const code = snippet('curl-resume').code;
    const r = run('bash', ['-c', against(code, proxy)], proxy.url);
    running = r;
    const text = () => r.lines().join('\n');
    const ids = () => [...text().matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
    await waitFor(() => ids().length === 2, 5000, r.output);
    expect(ids()).toEqual(ticks.slice(2).map((x) => x.id));
    const [next] = await t.publishAll('BTC-USD', [204]);
    await waitFor(() => ids().length === 3, 5000, r.output);
    expect(ids()[2]).toBe(next?.id);
    expect(text()).not.toContain('event: reset');
  });
});
