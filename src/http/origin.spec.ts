import { originAllowed } from './origin';

describe(originAllowed.name, () => {
  it('allows requests without an Origin header (not a browser)', () => {
    expect(originAllowed(undefined, 'api.example.com', [])).toBe(true);
  });

  it('allows only the same origin when CORS_ORIGINS is empty', () => {
    expect(originAllowed('https://api.example.com', 'api.example.com', [])).toBe(true);
    expect(originAllowed('https://evil.example', 'api.example.com', [])).toBe(false);
    expect(originAllowed('not a url', 'api.example.com', [])).toBe(false);
  });

  it('allows listed origins and * when CORS_ORIGINS is set, and refuses the rest', () => {
    expect(originAllowed('https://app.example.com', 'api.example.com', ['https://app.example.com'])).toBe(true);
    expect(originAllowed('https://evil.example', 'api.example.com', ['https://app.example.com'])).toBe(false);
    expect(originAllowed('https://any.example', 'api.example.com', ['*'])).toBe(true);
  });

  it('never locks out the service’s own origin (the bundled web client) when CORS_ORIGINS is set', () => {
    expect(originAllowed('https://api.example.com', 'api.example.com', ['https://app.example.com'])).toBe(true);
    expect(originAllowed('http://127.0.0.1:8080', '127.0.0.1:8080', ['https://app.example.com'])).toBe(true);
  });
});
