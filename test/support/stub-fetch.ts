/** A canned HTTP answer: a JSON value (serialised), or raw text for garbage bodies. */
export type StubReply = { status?: number; json?: unknown; text?: string; headers?: Record<string, string> };

export type StubbedFetch = {
  /** The URL and headers of every call, in order. */
  calls: { url: URL; headers: Headers }[];
  restore(): void;
};

/**
 * Replaces the global fetch for parser specs: each call gets `reply(url)`. The body is a real
 * stream, so fetchJson's size limit and JSON parsing run as they do against a server.
 */
export function stubFetch(reply: (url: URL) => StubReply): StubbedFetch {
  const calls: StubbedFetch['calls'] = [];
  const spy = jest.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    calls.push({ url, headers: new Headers(init?.headers) });
    const r = reply(url);
    const body = r.text ?? JSON.stringify(r.json);
    return Promise.resolve(new Response(body, { status: r.status ?? 200, headers: { 'content-type': 'application/json', ...r.headers } }));
  });
  return { calls, restore: () => spy.mockRestore() };
}
