import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { BenchResult } from '../bench/run';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'bench', 'dist', 'bench', 'cli.js');
const TRANSPORTS = ['sse', 'socketio', 'ws'] as const;

/** Runs `npm run bench` (its compiled CLI) against a freshly started dist/main.js and reads its JSON. */
function bench(args: string[]): Promise<{ code: number; output: string; result: BenchResult }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-e2e-'));
  const out = path.join(dir, 'result.json');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args, '--assert', '--out', out], { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      try {
        resolve({ code, output: `${stdout}\n${stderr}`, result: JSON.parse(readFileSync(out, 'utf8')) as BenchResult });
      } catch {
        reject(new Error(`the benchmark wrote no result (exit ${code}):\n${stdout}\n${stderr}`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

// Small sizes: correctness only. Speed is the harness' own report, not a test's business.
describe('load and resume benchmark (CI size)', () => {
  beforeAll(() => {
    for (const f of [path.join(root, 'dist', 'main.js'), cli]) {
      if (!existsSync(f)) throw new Error(`${path.relative(root, f)} is missing: run \`npm run build\` (npm test does) first`);
    }
  });

  it('delivers every tick once and in order to 200 subscribers per transport', async () => {
    const { code, output, result } = await bench(['--sse', '200', '--socketio', '200', '--ws', '200', '--pairs', '2', '--tick-ms', '250', '--duration', '10', '--idle', '1', '--settle', '1']);
    expect(result.published.ticks).toBeGreaterThanOrEqual(60);
    for (const t of TRANSPORTS) {
      const s = result.transports[t];
      expect({ t, held: s.heldAtStart, failures: s.connectFailures }).toEqual({ t, held: 200, failures: {} });
      expect({ t, missing: s.missing, duplicates: s.duplicates, outOfOrder: s.outOfOrder, resets: s.resets }).toEqual({ t, missing: 0, duplicates: 0, outOfOrder: 0, resets: 0 });
      expect(s.expected).toBe(200 * result.published.ticks);
      expect(s.latency[0].count).toBeGreaterThan(0);
    }
    expect(result.assert).toEqual({ passed: true, failures: [] });
    expect({ code, output }).toEqual({ code: 0, output: expect.any(String) });
  }, 120_000);

  it('resumes every cut connection from its last id with no gap and no duplicate', async () => {
    const { code, output, result } = await bench([
      '--sse', '100', '--socketio', '100', '--ws', '100', '--pairs', '2', '--tick-ms', '200', '--duration', '12',
      '--churn', '--churn-min', '1', '--churn-max', '3', '--idle', '1', '--settle', '1',
    ]);
    for (const t of TRANSPORTS) {
      const s = result.transports[t];
      // Every connection is cut at least three times in 12 s, and each cut is followed by a resume.
      expect(s.cuts).toBeGreaterThanOrEqual(300);
      expect(s.reconnects).toBeGreaterThanOrEqual(s.cuts - 100);
      expect({ t, missing: s.missing, duplicates: s.duplicates, outOfOrder: s.outOfOrder, resets: s.resets }).toEqual({ t, missing: 0, duplicates: 0, outOfOrder: 0, resets: 0 });
      expect(s.deliveredPct).toBe(100);
    }
    expect({ code, output }).toEqual({ code: 0, output: expect.any(String) });
  }, 120_000);
});
