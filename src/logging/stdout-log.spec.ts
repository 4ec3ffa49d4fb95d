import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StdoutLog } from './stdout-log';

const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK, O_CREAT } = fs.constants;

/** A named pipe in a folder of its own, and a file for the lines about failures; removed after each test. */
let dir: string;
let fifo: string;
let errors: string;
const fds: number[] = [];
const open = (file: string, flags: number): number => {
  const fd = fs.openSync(file, flags);
  fds.push(fd);
  return fd;
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stdout-log-'));
  fifo = path.join(dir, 'out');
  errors = path.join(dir, 'errors');
  execFileSync('mkfifo', [fifo]);
  fs.writeFileSync(errors, '');
});

afterEach(() => {
  for (const fd of fds.splice(0)) fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A reader of the FIFO at argv[1]: 16 KiB every 50 ms, then the total read on stdout. */
const READ_SLOWLY = `
const fs = require('fs');
const fd = fs.openSync(process.argv[1], fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
const buf = Buffer.alloc(16384);
let total = 0;
const tick = () => {
  let n;
  try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (e) { if (e.code !== 'EAGAIN') throw e; return setTimeout(tick, 50); }
  if (n === 0 && total > 0) { process.stdout.write(String(total)); return; } // the writer's end (before its first line: no writer yet)
  total += n;
  setTimeout(tick, 50);
};
tick();
`;

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

const line = (i: number) => `${JSON.stringify({ msg: 'line', i })}\n`;
const reported = (): Record<string, unknown>[] =>
  fs
    .readFileSync(errors, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe(StdoutLog.name, () => {
  it('writes every line in order, all of them once flush calls back (exitAfterLogs waits for it before the exit)', async () => {
    const file = path.join(dir, 'log');
    const log = new StdoutLog(open(file, O_WRONLY | O_CREAT), { errorFd: open(errors, O_WRONLY) });
    for (let i = 0; i < 1000; i++) log.write(line(i));
    await log.flushWithin(5_000);
    log.flushAtExit(); // nothing left
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([...Array(1000).keys()]);
    expect(log.dropped).toBe(0);
    expect(reported()).toEqual([]);
  });

  it('ends the logging when its reader is gone (EPIPE): said once, what was buffered counted as dropped, and the exit does not wait', async () => {
    const reader = fs.openSync(fifo, O_RDONLY | O_NONBLOCK);
    const log = new StdoutLog(open(fifo, O_WRONLY | O_NONBLOCK), { errorFd: open(errors, O_WRONLY) });
    fs.closeSync(reader);
    // Lines queued behind a write in flight, at exit: pino's default stream retried these every 100 ms, without end.
    for (let i = 0; i < 100; i++) log.write(line(i));
    const started = Date.now();
    log.flushAtExit();
    expect(Date.now() - started).toBeLessThan(1000);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the write in flight fails too: not counted twice
    log.write(line(100));
    expect(log.dropped).toBe(101);
    expect(reported()).toEqual([expect.objectContaining({ level: 50, msg: 'log output ended: its reader is gone', code: 'EPIPE', droppedLines: 100 })]);
    await expect(log.flushWithin(1_000)).resolves.toBeUndefined();
  });

  it('keeps logging after another failure (ENOSPC: a full disk), said once for the run of failures', async () => {
    const log = new StdoutLog(open('/dev/full', O_WRONLY), { errorFd: open(errors, O_WRONLY) });
    for (let i = 0; i < 5; i++) {
      log.write(line(i));
      await new Promise((resolve) => setTimeout(resolve, 20)); // each write tried and failed
    }
    expect(reported()).toEqual([expect.objectContaining({ msg: 'log output failed; retried with the next line', code: 'ENOSPC' })]);
    // Not ended: what is logged is kept (and retried), not dropped.
    expect(log.dropped).toBe(0);
    log.flushAtExit();
    expect(reported()[1]).toMatchObject({ msg: 'log output given up at exit', code: 'ENOSPC' });
    expect(reported()[1].unwrittenBytes).toBeGreaterThanOrEqual(5 * line(0).length);
  });

  it('writes everything at exit to a reader slower than it but taking something, past the waits in a row it gives a reader that takes nothing', async () => {
    // The reader: another process, 16 KiB every 50 ms (flushAtExit blocks this one); it says how much it read.
    const reader = spawn(process.execPath, ['-e', READ_SLOWLY, fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
    let read = '';
    reader.stdout.on('data', (c: Buffer) => (read += c.toString()));
    const done = new Promise((resolve) => reader.once('exit', resolve));
    // Non-blocking, as stdout is made (stdoutLog): opened once the reader has its end (ENXIO before).
    let writer = -1;
    await waitUntil(() => {
      try {
        writer = fs.openSync(fifo, O_WRONLY | O_NONBLOCK);
        return true;
      } catch {
        return false;
      }
    });
    const log = new StdoutLog(writer, { exitRetries: 5, exitRetriesInAll: 100, errorFd: open(errors, O_WRONLY) });
    const big = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 512; i++) log.write(big); // 512 KiB: the pipe's 64 KiB, then ~30 waits
    log.flushAtExit();
    // The write that was in flight (async, the first one) lands on its own; then the reader sees the end.
    await log.flushWithin(2_000);
    fs.closeSync(writer);
    await done;
    expect(Number(read)).toBe(512 * 1024);
    expect(reported()).toEqual([]);
  }, 20_000);

  it('drops and counts what passes its buffer while the reader is stuck, and gives up a full pipe at exit', async () => {
    // Opened for reading and writing: the pipe has a reader that never reads.
    const log = new StdoutLog(open(fifo, O_RDWR | O_NONBLOCK), { maxBytes: 256 * 1024, exitRetries: 2, errorFd: open(errors, O_WRONLY) });
    const big = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) log.write(big); // the pipe's 64 KiB
    await new Promise((resolve) => setTimeout(resolve, 100)); // written, and the next write waits (EAGAIN)
    for (let i = 0; i < 1024; i++) log.write(big); // 1 MiB more, past the 256 KiB buffer
    expect(log.dropped).toBeGreaterThanOrEqual(1024 - 256);
    expect(log.dropped).toBeLessThan(1024);
    // A flush bounded by its wait: the pipe never drains.
    const flushing = Date.now();
    await log.flushWithin(200);
    expect(Date.now() - flushing).toBeGreaterThanOrEqual(150);
    const started = Date.now();
    log.flushAtExit();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(reported()).toEqual([expect.objectContaining({ msg: 'log output given up at exit', code: 'EAGAIN' })]);
  });
});
