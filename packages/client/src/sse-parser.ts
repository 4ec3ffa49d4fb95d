/** One dispatched Server-Sent Event. */
export type SseEvent = {
  /** `event:`, `message` when the event named none. */
  type: string;
  /** Every `data:` line of the event, joined with line feeds. */
  data: string;
  /** The last event id so far (`id:` persists across events, as in EventSource). */
  lastEventId: string;
};

/**
 * The text/event-stream format as the HTML standard's EventSource reads it, over chunks of
 * text as they arrive: lines end with CRLF, LF or CR (also split across chunks); `:` starts a
 * comment; `field: value` loses one space after the colon; `data` lines join with `\n`; an
 * event with no `data` is not dispatched; `id` with a NUL is ignored; `retry` takes digits only.
 */
export class SseParser {
  private buffer = '';
  private started = false;
  /** The previous chunk ended with CR: a LF opening the next one belongs to that line end. */
  private afterCr = false;
  private type = '';
  private data: string[] = [];
  private lastEventId = '';
  /** The last `retry:` the stream sent, in ms (null before any). */
  retryMs: number | null = null;
  /** How many `retry:` fields the stream sent. */
  retryCount = 0;

  private readonly onEvent: (event: SseEvent) => void;

  constructor(onEvent: (event: SseEvent) => void) {
    this.onEvent = onEvent;
  }

  push(chunk: string): void {
    let text = chunk;
    if (this.afterCr && text.startsWith('\n')) text = text.slice(1);
    this.afterCr = false;
    if (!this.started && text !== '') {
      this.started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      this.line(this.buffer.slice(start, end));
      const crlf = this.buffer[end] === '\r' && this.buffer[end + 1] === '\n';
      // A CR that ends the chunk: a LF may still come in the next one.
      if (this.buffer[end] === '\r' && end + 1 === this.buffer.length) this.afterCr = true;
      start = end + (crlf ? 2 : 1);
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastEventId = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) {
      this.retryMs = Number(value);
      this.retryCount += 1;
    }
  }

  private dispatch(): void {
    const type = this.type === '' ? 'message' : this.type;
    const data = this.data;
    this.type = '';
    this.data = [];
    if (data.length === 0) return;
    this.onEvent({ type, data: data.join('\n'), lastEventId: this.lastEventId });
  }
}
