import { writeSync } from 'node:fs';
import SonicBoom from 'sonic-boom';

/** The most log output held for a reader that is behind; past it, lines are dropped and counted. */
export const LOG_BUFFER_BYTES = 16 * 1024 * 1024;
/** At exit, how many 100 ms waits for a full pipe (EAGAIN) before what is left is given up. */
const EXIT_RETRIES = 20;

export type StdoutLogOptions = {
  /** LOG_BUFFER_BYTES unless set. */
  maxBytes?: number;
  /** EXIT_RETRIES unless set. */
  exitRetries?: number;
  /** Where the one line saying the output failed goes: fd 2 unless set. */
  errorFd?: number;
};

/**
 * The service's log output: JSON lines to stdout, written asynchronously by sonic-boom (as
 * pino's own default), and what is still buffered written synchronously at exit.
 *
 * Unlike pino's default stream, a reader that is gone or stuck never holds the process:
 * - a failed write (EPIPE: the pipe's reader is gone; EBADF, EIO) ends the logging, once, with
 *   one line to stderr; pino's default retried a failed write at exit every 100 ms, forever, so a
 *   SIGTERM never ended a service whose log reader had gone;
 * - at exit, a pipe that stays full is waited on for at most ~2 s;
 * - a reader that falls behind by more than LOG_BUFFER_BYTES loses lines, counted, instead of the
 *   process' memory growing without bound.
 */
export class StdoutLog {
  private readonly out: SonicBoom;
  private failed = false;
  private exiting = false;
  private retriedAtExit = 0;
  /** Lines never written: dropped while the reader was behind, or written after output failed. */
  dropped = 0;

  private readonly errorFd: number;

  constructor(fd: number, { maxBytes = LOG_BUFFER_BYTES, exitRetries = EXIT_RETRIES, errorFd = 2 }: StdoutLogOptions = {}) {
    this.errorFd = errorFd;
    this.out = new SonicBoom({
      fd,
      maxLength: maxBytes,
      // A full pipe: retried without end while the process runs (the buffer is bounded), a few times at exit.
      retryEAGAIN: () => !this.exiting || ++this.retriedAtExit <= exitRetries,
    });
    this.out.on('drop', () => this.dropped++);
    this.out.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
  }

  write(line: string): void {
    if (this.failed) this.dropped++;
    else this.out.write(line);
  }

  /** What is still buffered, written before the process exits (its 'exit' event). */
  flushAtExit(): void {
    this.exiting = true;
    if (this.failed) return;
    try {
      this.out.flushSync();
    } catch (err) {
      this.fail(err as NodeJS.ErrnoException);
    }
  }

  private fail(err: NodeJS.ErrnoException): void {
    if (this.failed) return;
    this.failed = true;
    try {
      writeSync(this.errorFd, `${JSON.stringify({ level: 50, time: Date.now(), msg: 'log output failed, logging stopped', code: err.code ?? String(err) })}\n`);
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

/** The process' one log stream on stdout, flushed at exit. */
export function stdoutLog(): StdoutLog {
  if (!stdout) {
    const log = new StdoutLog(1);
    process.on('exit', () => log.flushAtExit());
    stdout = log;
  }
  return stdout;
}
