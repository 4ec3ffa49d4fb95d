import { freshnessText, statusText } from './status.view';

describe('statusText', () => {
  it('names the transport when live and the delay when reconnecting', () => {
    expect(statusText({ state: 'live' }, 'socketio')).toBe('Live over Socket.IO');
    expect(statusText({ state: 'reconnecting', attempt: 2, delayMs: 1500, reason: 'x' }, 'sse')).toBe('Connection lost; reconnecting in 1.5 s (attempt 2)');
  });

  it('says why when the server refused the stream for good', () => {
    expect(statusText({ state: 'failed', code: 'UNSUPPORTED_PAIR', reason: 'refused: UNSUPPORTED_PAIR: DOGE-USD is not served here' }, 'sse')).toBe(
      'Refused by the server: refused: UNSUPPORTED_PAIR: DOGE-USD is not served here',
    );
  });
});

describe('freshnessText', () => {
  it('shows the age at arrival and the count of resumes', () => {
    expect(freshnessText(4012, 0)).toBe('Price 4.0 s old on arrival (server clock) · 0 resumes');
    expect(freshnessText(250, 1)).toBe('Price 0.3 s old on arrival (server clock) · 1 resume');
  });

  it('never shows a negative age (the offset estimate includes the fastest delivery)', () => {
    expect(freshnessText(-30, 2)).toBe('Price 0.0 s old on arrival (server clock) · 2 resumes');
  });
});
