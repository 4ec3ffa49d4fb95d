import { writeSync } from 'node:fs';
import SonicBoom from 'sonic-boom';

/** The most log output held for a reader that is behind; past it, lines are dropped and counted. */
export const LOG_BUFFER_BYTES = 16 * 1024 * 1024;
/** At exit, how many 100 ms waits in a row for a full pipe (EAGAIN) that takes nothing before what is left is given up. */
const EXIT_RETRIES = 20;
/** At exit, how many such waits in all, however much the reader takes meanwhile. */
const EXIT_RETRIES_IN_ALL = 50;
/**
 * The most one write takes when it holds several lines: a pipe takes a write of up to PIPE_BUF
 * (4 KiB on Linux) whole, so lines of up to 4 KiB from processes sharing it (the primary and
 * workers of WORKERS > 1) never interleave. (A longer line is one write of its own.)
 */
const MAX_WRITE = 4096;
/** How long a process about to exit waits for the log lines it still has to be written, in order (`exitAfterLogs`). */
const LAST_LINES_MS = 100;

export type StdoutLogOptions = {
  /** LOG_BUFFER_BYTES unless set. */
  maxBytes?: number;
  /** EXIT_RETRIES unless set. */
  exitRetries?: number;
  /** EXIT_RETRIES_IN_ALL unless set. */
  exitRetriesInAll?: number;
  /** Where the lines about the output's own failures go: fd 2 unless set. */
  errorFd?: number;
};

/** What sonic-boom 5.0.2 holds that is not written yet (utf8 mode; a partly written rest is a Buffer): the write in flight and those queued behind it. */
type Buffered = { _writingBuf?: unknown; _bufs?: unknown };

/**
 * The service's log output: JSON lines to stdout, written asynchronously by sonic-boom (as
 * pino's own default), and what is still buffered written at exit.
 *
 * Unlike pino's default stream, a reader that is gone or stuck never holds the process:
 * - its reader gone (EPIPE), the logging ends, said once on stderr; what was buffered and what
 *   is logged after counts as dropped. pino's default retried that write at exit every 100 ms,
 *   without end, so a SIGTERM never ended a service whose log reader had gone;
 * - any other failed write (ENOSPC, EIO: a full disk under a redirect) is said once on stderr
 *   and retried with the next line, so the logging resumes when the output does;
 * - a reader that falls behind by more than LOG_BUFFER_BYTES loses lines, counted, instead of
 *   the process' memory growing without bound;
 * - at exit, a pipe that stays full is given up after ~2 s without progress (~5 s in all).
 */
export class StdoutLog {
  private readonly out: SonicBoom;
  /** The reader is gone (EPIPE): nothing more is written. */
  private ended = false;
  private exiting = false;
  /** At exit: waits on a full pipe, in a row without progress and in all, and what was left at the last one. */
  private stalled = 0;
  private waited = 0;
  private left = Infinity;
  /** Whether a failure is said on stderr: once per run of failures (a write that succeeds re-arms it). */
  private tell = true;
  private readonly errorFd: number;
  /** Lines never written: dropped while the reader was behind, or lost to a reader that is gone. */
  dropped = 0;

  constructor(fd: number, { maxBytes = LOG_BUFFER_BYTES, exitRetries = EXIT_RETRIES, exitRetriesInAll = EXIT_RETRIES_IN_ALL, errorFd = 2 }: StdoutLogOptions = {}) {
    this.errorFd = errorFd;
    this.out = new SonicBoom({
      fd,
      maxLength: maxBytes,
      maxWrite: MAX_WRITE,
      // A full pipe: retried without end while the process runs (the buffer is bounded); at exit
      // while the reader takes something, up to a bound in all.
      retryEAGAIN: (_err, writing, queued) => !this.exiting || this.waitAtExit(writing + queued, exitRetries, exitRetriesInAll),
    });
    this.out.on('drop', () => this.dropped++);
    this.out.on('write', () => (this.tell = true));
    this.out.on('error', (err: NodeJS.ErrnoException) => this.failed(err));
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  write(line: string): void {
    if (this.ended) this.dropped++;
    else this.out.write(line);
  }

  /** Waits, at most `withinMs`, until every line so far is written (at once when none waits). */
  flushWithin(withinMs: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, withinMs);
      this.out.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * What is still buffered, written as the process exits (its 'exit' event: synchronously). A
   * write still in flight then may land after these: `exitAfterLogs` waits for them first.
   */
  flushAtExit(): void {
    this.exiting = true;
    if (this.ended) return;
    try {
      this.out.flushSync();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') this.failed(err as NodeJS.ErrnoException);
      else this.say({ msg: 'log output given up at exit', code, unwrittenBytes: this.unwritten().bytes });
    }
  }

  /** Whether to wait once more for a full pipe at exit: `left` bytes remain. */
  private waitAtExit(left: number, inARow: number, inAll: number): boolean {
    this.stalled = left < this.left ? 1 : this.stalled + 1;
    this.left = left;
    return this.stalled <= inARow && ++this.waited <= inAll;
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (this.ended) return;
    if (err.code === 'EPIPE') {
      this.ended = true;
      const lost = this.unwritten().lines;
      this.dropped += lost;
      this.say({ msg: 'log output ended: its reader is gone', code: err.code, droppedLines: lost });
      return;
    }
    if (this.exiting || !this.tell) return;
    this.tell = false;
    this.say({ msg: 'log output failed; retried with the next line', code: err.code ?? String(err) });
  }

  /** The lines and bytes sonic-boom holds unwritten (read from its fields: the version is pinned). */
  private unwritten(): { lines: number; bytes: number } {
    const held = this.out as unknown as Buffered;
    const parts = [held._writingBuf, ...(Array.isArray(held._bufs) ? (held._bufs as unknown[]) : [])].filter((p): p is string | Buffer => typeof p === 'string' || Buffer.isBuffer(p));
    let lines = 0;
    let bytes = 0;
    for (const part of parts) {
      const buf = typeof part === 'string' ? Buffer.from(part) : part;
      bytes += buf.length;
      for (let at = buf.indexOf(10); at !== -1; at = buf.indexOf(10, at + 1)) lines++;
    }
    return { lines, bytes };
  }

  /** One line to stderr, as the logs' own (stderr may be gone too: then nothing). */
  private say(fields: Record<string, unknown>): void {
    try {
      writeSync(this.errorFd, `${JSON.stringify({ level: 50, time: Date.now(), pid: process.pid, ...fields })}\n`);
    } catch {
      // stderr is gone too.
    }
  }
}

let stdout: StdoutLog | undefined;

/** Log lines this process' stdout stream did not write (0 while the logs go elsewhere). */
export function droppedLogLines(): number {
  return stdout?.dropped ?? 0;
}

/** Whether this process' logging ended (its stdout reader is gone): it stays off until a restart. */
export function logOutputEnded(): boolean {
  return stdout?.hasEnded ?? false;
}

/**
 * The process' one log stream on stdout, flushed at exit.
 *
 * `process.stdout` is made first, as pino's default did: on a pipe or socket Node then sets fd 1
 * non-blocking (libuv), so a write to a full pipe returns EAGAIN (retried by a timer) instead of
 * blocking a thread of libuv's pool, which the exit would wait for without end.
 */
export function stdoutLog(): StdoutLog {
  if (!stdout) {
    void process.stdout;
    const log = new StdoutLog(1);
    process.on('exit', () => log.flushAtExit());
    stdout = log;
  }
  return stdout;
}

/**
 * Exits with `code` once the log lines so far are written (at most LAST_LINES_MS; at once when
 * none waits): flushed at exit behind a write still in flight, the last lines (`stopped`) could
 * land before the ones logged just before them.
 */
export function exitAfterLogs(code: number): void {
  const flushed = stdout ? stdout.flushWithin(LAST_LINES_MS) : Promise.resolve();
  void flushed.finally(() => process.exit(code));
}
