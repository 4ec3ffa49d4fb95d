import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from './support/wait';

/**
 * `npm start` and `npm test` skip the build when nothing it reads changed (scripts/build-stamp.mjs).
 * Run on a small project in a temporary folder that has this repository's own build-related
 * scripts from package.json, with a stand-in `build` that counts how often it ran.
 */
const root = path.join(__dirname, '..');
const ownScripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

const FAKE_BUILD = `
const fs = require('fs');
if (process.env.FAIL_BUILD) process.exit(1);
fs.rmSync('dist', { recursive: true, force: true });
fs.mkdirSync('dist');
// With STAY (a file's path), it stays up as a service would, and writes the signal that stops it there.
fs.writeFileSync('dist/main.js', 'console.log("served " + require("fs").readFileSync("src/a.ts", "utf8"));' +
  'if (process.env.STAY) { process.on("SIGTERM", () => { require("fs").writeFileSync(process.env.STAY, "SIGTERM"); process.exit(0); });' +
  ' setInterval(() => undefined, 1000); console.log("up " + process.pid); }');
fs.appendFileSync(process.env.BUILDS_LOG, 'build\\n'); // outside the project: not an input
`;

/** Each step is one or two npm runs (npm, then node for the stamp and the stand-in build): seconds each on a loaded machine. */
const SLOW = 120_000;

describe('the build is skipped when nothing it reads changed', () => {
  let dir: string;
  let buildsLog: string;
  const builds = (): number => readFileSync(buildsLog, 'utf8').split('\n').filter(Boolean).length;
  const write = (file: string, text: string): void => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  };
  const npm = (script: string, env: Record<string, string> = {}) => spawnSync('npm', ['run', '--silent', script], { cwd: dir, encoding: 'utf8', env: { ...process.env, BUILDS_LOG: buildsLog, ...env } });

  beforeAll(() => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'build-stamp-'));
    dir = path.join(tmp, 'project');
    buildsLog = path.join(tmp, 'builds.log');
    writeFileSync(buildsLog, '');
    mkdirSync(path.join(dir, 'scripts'), { recursive: true });
    copyFileSync(path.join(root, 'scripts', 'build-stamp.mjs'), path.join(dir, 'scripts', 'build-stamp.mjs'));
    const scripts = Object.fromEntries(['prebuild', 'postbuild', 'build:changed', 'start', 'pretest'].map((name) => [name, ownScripts[name]]));
    write('package.json', JSON.stringify({ name: 'stamp-test', private: true, scripts: { ...scripts, build: 'node build.js' } }));
    write('package-lock.json', '{}');
    write('build.js', FAKE_BUILD);
    write('src/a.ts', 'one');
    write('test/a.e2e-spec.ts', 'a test');
    write('docs/notes.md', 'notes');
  });
  afterAll(() => rmSync(path.dirname(dir), { recursive: true, force: true }));

  it('builds on the first start, then serves without building while the sources are the same', () => {
    expect(npm('start').stdout).toContain('served one');
    expect(builds()).toBe(1);
    const second = npm('start');
    expect(second.stdout).toContain('served one');
    expect(second.stderr).toContain('skipped');
    expect(builds()).toBe(1);
    npm('pretest');
    expect(builds()).toBe(1);
  }, SLOW);

  it('builds again when a source is changed, added or removed, not when a test, a doc, a profile or a file time changes', () => {
    write('test/a.e2e-spec.ts', 'another test');
    write('docs/notes.md', 'other notes');
    write('bench.cpuprofile', 'a profile a bench run left');
    execFileSync('touch', [path.join(dir, 'src/a.ts')]);
    npm('start');
    expect(builds()).toBe(1);
    write('src/a.ts', 'two');
    expect(npm('start').stdout).toContain('served two');
    expect(builds()).toBe(2);
    write('package-lock.json', '{"lockfileVersion":3}');
    npm('pretest');
    expect(builds()).toBe(3);
    write('src/b.ts', 'a new file');
    npm('start');
    expect(builds()).toBe(4);
    rmSync(path.join(dir, 'src/b.ts'));
    npm('start');
    expect(builds()).toBe(5);
  }, SLOW);

  it('builds again when an output is missing or was changed by hand', () => {
    rmSync(path.join(dir, 'dist', 'main.js'));
    expect(npm('start').stdout).toContain('served two');
    expect(builds()).toBe(6);
    write('dist/main.js', 'console.log("edited by hand")');
    expect(npm('start').stdout).toContain('served two');
    expect(builds()).toBe(7);
  }, SLOW);

  it('builds again after a failed build, even with the sources as they were, and `npm run build` always builds', () => {
    expect(npm('build', { FAIL_BUILD: '1' }).status).not.toBe(0);
    expect(builds()).toBe(7);
    expect(npm('start').stdout).toContain('served two');
    expect(builds()).toBe(8);
    npm('build');
    expect(builds()).toBe(9);
    npm('start');
    expect(builds()).toBe(9);
  }, SLOW);

  it("hands npm's SIGTERM to the service: a supervisor that stops `npm start` stops the service, not only npm", async () => {
    const marker = path.join(path.dirname(dir), 'stopped-by.txt');
    const started = spawn('npm', ['run', '--silent', 'start'], { cwd: dir, env: { ...process.env, BUILDS_LOG: buildsLog, STAY: marker }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    started.stdout.on('data', (d: Buffer) => (out += d.toString()));
    started.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => started.once('exit', resolve));
    let service = 0;
    try {
      await waitFor(() => /up \d+/.test(out), 60_000, () => out);
      service = Number(/up (\d+)/.exec(out)![1]);
      started.kill('SIGTERM'); // npm's own pid, as a supervisor signals what it started
      await exited;
      // The service got the signal (the start script execs it: npm's child is the service itself).
      await waitFor(() => { try { return readFileSync(marker, 'utf8') === 'SIGTERM'; } catch { return false; } }, 10_000, () => out);
      await waitFor(() => { try { process.kill(service, 0); return false; } catch { return true; } }, 10_000, () => `service ${service} still running: ${out}`);
    } finally {
      // Left running (the signal never reached it), it would hold this test's pipes open.
      started.kill('SIGKILL');
      if (service > 0) {
        try {
          process.kill(service, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
    }
    expect(builds()).toBe(9);
  }, SLOW);
});
