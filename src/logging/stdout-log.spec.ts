import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StdoutLog } from './stdout-log';

const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK } = fs.constants;

/** A named pipe in a folder of its own, and a file for the failure line; removed after each test. */
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

const line = (i: number) => `${JSON.stringify({ msg: 'line', i })}\n`;
const reported = () => fs.readFileSync(errors, 'utf8');

describe(StdoutLog.name, () => {
  it('writes every line in order, what is still buffered at exit included', () => {
    const file = path.join(dir, 'log');
    const log = new StdoutLog(open(file, O_WRONLY | fs.constants.O_CREAT), { errorFd: open(errors, O_WRONLY) });
    for (let i = 0; i < 1000; i++) log.write(line(i));
    log.flushAtExit();
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([...Array(1000).keys()]);
    expect(log.dropped).toBe(0);
    expect(reported()).toBe('');
  });

  it('stops logging, once and said on stderr, when the reader is gone (EPIPE), and exits without waiting for it', async () => {
    const reader = fs.openSync(fifo, O_RDONLY | O_NONBLOCK);
    const log = new StdoutLog(open(fifo, O_WRONLY | O_NONBLOCK), { errorFd: open(errors, O_WRONLY) });
    fs.closeSync(reader);
    // Lines behind a write in flight, at exit: pino's default stream retried these every 100 ms, without end.
    for (let i = 0; i < 100; i++) log.write(line(i));
    const started = Date.now();
    log.flushAtExit();
    expect(Date.now() - started).toBeLessThan(1000);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the write in flight fails too
    log.write(line(100));
    expect(log.dropped).toBe(1);
    const failures = reported().trimEnd().split('\n');
    expect(failures).toHaveLength(1);
    expect(JSON.parse(failures[0])).toMatchObject({ level: 50, msg: 'log output failed, logging stopped', code: 'EPIPE' });
  });

  it('drops and counts what passes its buffer while the reader is stuck, and gives up a full pipe at exit', async () => {
    // Opened for reading and writing: the pipe has a reader that never reads.
    const log = new StdoutLog(open(fifo, O_RDWR | O_NONBLOCK), { maxBytes: 256 * 1024, exitRetries: 2, errorFd: open(errors, O_WRONLY) });
    const big = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) log.write(big); // the pipe's 64 KiB
    await new Promise((resolve) => setTimeout(resolve, 100)); // written, and the next write waits (EAGAIN)
    for (let i = 0; i < 1024; i++) log.write(big); // 1 MiB more, past the 256 KiB buffer
    expect(log.dropped).toBeGreaterThanOrEqual(1024 - 256);
    expect(log.dropped).toBeLessThan(1024);
    const started = Date.now();
    log.flushAtExit();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(JSON.parse(reported())).toMatchObject({ msg: 'log output failed, logging stopped', code: 'EAGAIN' });
  });
});
