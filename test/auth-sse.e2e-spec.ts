import { startApp, type TestApp } from './support/app';
import { captureLogs } from './support/logs';
import { getJson } from './support/sse';
import { bearer, mint, sseStreams, TEST_SECRET } from './support/tokens';
import { waitFor } from './support/wait';

const AUTH = { AUTH_JWT_SECRET: TEST_SECRET };

/** SSE with tokens, and what the logs say of them (one app per file: the request logger is the process' root logger). */
describe('subscriber tokens on SSE', () => {
  let t: TestApp;
  const streams = sseStreams(() => t.url);
  const sse = streams.open;
  afterAll(async () => {
    streams.closeAll();
    await t?.close();
  });

  it('SSE: the Authorization header or the token query; 401 without, 403 PAIR_NOT_ENTITLED beyond its pairs; REST stays open with AUTH_REQUIRED=streams; the token never reaches the log', async () => {
    const { lines, destination } = captureLogs();
    t = await startApp({ ...AUTH, AUTH_REQUIRED: 'streams', LOG_LEVEL: 'debug' }, { logDestination: destination });
    const [tick] = await t.publishAll('BTC-USD', [100]);
    const token = await mint('alice', { pairs: ['BTC-USD'] });
    expect((await getJson(`${t.url}/api/prices/BTC-USD`)).status).toBe(200);
    const none = await sse('pairs=BTC-USD');
    expect(none.status).toBe(401);
    await none.ended;
    expect(JSON.parse(none.text())).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' });
    const byHeader = await sse('pairs=BTC-USD', bearer(token));
    const byQuery = await sse(`pairs=BTC-USD&token=${token}`);
    for (const s of [byHeader, byQuery]) {
      expect(s.status).toBe(200);
      await s.until((x) => x.ticks().some((k) => k.id === tick.id));
    }
    const beyond = await sse(`pairs=BTC-USD,ETH-USD&token=${token}`);
    expect(beyond.status).toBe(403);
    await beyond.ended;
    expect(JSON.parse(beyond.text())).toMatchObject({ code: 'PAIR_NOT_ENTITLED' });
    // No pairs named: the pairs the token grants (not every configured one).
    const granted = await sse('', bearer(token));
    expect(granted.status).toBe(200);
    const bad = await sse('pairs=BTC-USD&token=not-a-jwt-but-a-secret-value');
    expect(bad.status).toBe(401);
    await bad.ended;
    // A REST request with a token parameter is logged too: the value never is.
    await getJson(`${t.url}/api/prices/BTC-USD?token=${token}`);
    await waitFor(() => lines.some((l) => l.includes('stream refused') && l.includes('UNAUTHORIZED')));
    await waitFor(() => lines.some((l) => l.includes('request completed') && l.includes('token=[redacted]')));
    for (const secret of [token, token.split('.')[2], 'not-a-jwt-but-a-secret-value']) expect(lines.filter((l) => l.includes(secret))).toEqual([]);
    expect(lines.some((l) => l.includes('"sub":"alice"'))).toBe(true);
  });

  it('HEAD on a stream route checks the token as GET does: 401, 403 PAIR_NOT_ENTITLED, 200 with a token that grants the pairs, no slot held', async () => {
    const token = await mint('hera', { pairs: ['BTC-USD'], maxConnections: 1 });
    const head = async (query: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${t.url}/api/prices/stream?${query}`, { method: 'HEAD', headers });
      return { status: res.status, body: await res.text() };
    };
    expect(await head('pairs=BTC-USD')).toEqual({ status: 401, body: '' });
    expect(await head('pairs=BTC-USD', bearer(await mint('x', {}, -60)))).toEqual({ status: 401, body: '' });
    expect(await head(`pairs=ETH-USD&token=${token}`)).toEqual({ status: 403, body: '' });
    expect(await head('pairs=BTC-USD', bearer(token))).toEqual({ status: 200, body: '' });
    expect(await head(`token=${token}`)).toEqual({ status: 200, body: '' });
    expect((await fetch(`${t.url}/api/price/stream`, { method: 'HEAD' })).status).toBe(401);
    // HEAD took no slot: the token's one stream still opens.
    expect((await sse('pairs=BTC-USD', bearer(token))).status).toBe(200);
  });

});
