/**
 * The supervisor of `--hold-port`: it holds the service's listening sockets and starts the service
 * on them, as systemd does with a socket unit (socket activation, sd_listen_fds(3)). The harness
 * made the sockets and passed them here as fds 4, 5, ... (fd 3 is the harness' IPC channel), then
 * closed its own copies: from then on only this process and the service it starts hold them, and
 * this one never accepts, so what connects while no service runs (a restart after a crash) waits
 * in their queues. The service gets them as fds 3, 4, ... with LISTEN_FDS, and LISTEN_PID set to
 * its own pid by the shell that execs it.
 *
 * Messages from the harness: `{ type: 'start', id, args, cwd, env, logFile }` (node's arguments,
 * the service's output appended to logFile). To the harness: `{ type: 'ready' }` once; per start,
 * `{ type: 'started', id, pid }` then `{ type: 'exit', id, code, signal }`, or `{ type: 'failed',
 * id, error }`. The harness signals the service by its pid. When the harness goes, this process
 * kills the services it started and exits, and the sockets close with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

type Start = { type: 'start'; id: number; args: string[]; cwd: string; env: Record<string, string>; logFile: string };

const count = Number(process.env.HELD_SOCKETS);
if (!Number.isInteger(count) || count < 1 || !process.send) {
  process.stderr.write('supervisor: started by the bench harness (an IPC channel and HELD_SOCKETS sockets from fd 4)\n');
  process.exit(2);
}
const held = Array.from({ length: count }, (_, i) => 4 + i);
const send = (m: object) => process.connected && process.send!(m);
const running = new Set<ChildProcess>();

process.on('message', (m: Start) => {
  if (m.type !== 'start') return;
  let log: number;
  try {
    log = openSync(m.logFile, 'a');
  } catch (err) {
    return void send({ type: 'failed', id: m.id, error: (err as Error).message });
  }
  // The shell's pid is the service's: `exec` keeps it. LISTEN_PID must name the process the sockets are for.
  const child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, ...m.args], {
    cwd: m.cwd,
    env: { ...m.env, LISTEN_FDS: String(count) },
    stdio: ['ignore', log, log, ...held],
  });
  closeSync(log);
  running.add(child);
  child.once('spawn', () => send({ type: 'started', id: m.id, pid: child.pid }));
  child.once('error', (err) => {
    running.delete(child);
    send({ type: 'failed', id: m.id, error: err.message });
  });
  child.once('exit', (code, signal) => {
    running.delete(child);
    send({ type: 'exit', id: m.id, code, signal });
  });
});
process.on('disconnect', () => {
  for (const child of running) child.kill('SIGKILL');
  process.exit(0);
});
send({ type: 'ready' });
