import { Writable } from 'node:stream';

/** A log destination for startApp that keeps every JSON line the service writes (in `lines`). */
export function captureLogs(lines: string[] = []): { lines: string[]; destination: Writable } {
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, destination };
}
