import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const MAIN = path.join(__dirname, '..', '..', 'dist', 'main.js');

/** `node dist/main.js` as an operator runs it: its output so far, and when it exited with what code. */
export type MainProcess = { proc: ChildProcess; output(): string; exited: Promise<{ code: number | null; at: number }> };

/** Every service started here and not yet exited. */
const running = new Set<ChildProcess>();

/**
 * SIGKILLs every service started here that is still running: a spec's afterEach or afterAll,
 * for a test or hook jest timed out, which never reaches its own `finally` (its service was left
 * serving). (A `process.on('exit')` here would not do: jest gives each spec a process object of
 * its own, whose 'exit' never comes.)
 */
export function killStillRunning(): void {
  for (const proc of running) proc.kill('SIGKILL');
}

/**
 * Starts the built service with only PATH and `env` in its environment; its stdout is `stdout`
 * when given (an fd of this process; `output` then has its stderr only). `inherit`: fds of this
 * process the service gets as its fds 3, 4, ..., started as systemd starts a socket-activated
 * service: LISTEN_PID set to its own pid (a shell that sets it, then execs node).
 */
export function spawnMain(env: Record<string, string>, inherit: number[] = [], stdout?: number): MainProcess {
  expect(fs.existsSync(MAIN)).toBe(true); // `npm run build` (pretest) makes dist/
  const [command, args] = inherit.length > 0 ? ['/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, MAIN]] : [process.execPath, [MAIN]];
  const proc = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', stdout ?? 'pipe', 'pipe', ...inherit] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => proc.on('exit', (code) => resolve({ code, at: Date.now() })));
  return { proc, output: () => out, exited };
}
