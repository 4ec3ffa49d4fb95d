/// <reference lib="dom" />
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';

/**
 * The web client in a real Chromium against the real server and the simulated source. CI
 * installs Chromium (apt-get install chromium); without it this spec fails, it never skips.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ENV = { PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '300', PAIRS: 'BTC-USD,ETH-USD,BTC-EUR' };
/** `npm run screenshot` updates the committed docs/screenshot.png; other runs leave the tree clean. */
const SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1' ? join(__dirname, '..', 'docs', 'screenshot.png') : join(tmpdir(), 'price-stream-screenshot.png');
const TRANSPORTS = [
  { kind: 'sse', label: 'Server-Sent Events' },
  { kind: 'socketio', label: 'Socket.IO' },
  { kind: 'websocket', label: 'WebSocket' },
] as const;

/** What the browser reports as failed requests while the test itself cuts the server off. */
const OUTAGE_NOISE = /ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed|Failed to load resource/;

type Opened = { context: BrowserContext; page: Page; errors: string[] };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Until the backfill gave BTC-USD its day of (simulated) history: the 24H chart's 96 quarter hours. */
async function waitForHistory(t: TestApp): Promise<void> {
  for (const until = Date.now() + 15_000; Date.now() < until; await sleep(100)) {
    const res = (await (await fetch(`${t.url}/api/prices/BTC-USD/candles?interval=15m&limit=96`)).json()) as { candles: unknown[] };
    if (res.candles.length >= 95) return;
  }
  throw new Error('no day of history within 15 s');
}

describe('web client in Chromium', () => {
  let browser: Browser | undefined;
  const apps: TestApp[] = [];
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is required for this test and was not found at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  afterAll(async () => {
    await browser?.close();
  });

  const start = async (port?: number): Promise<TestApp> => {
    const app = await startApp(port === undefined ? ENV : { ...ENV, PORT: String(port) });
    apps.push(app);
    return app;
  };

  /** The app without a poller or a backfill: the test publishes every tick itself, ticker fields and times included. */
  const startQuiet = async (pairs = ENV.PAIRS): Promise<TestApp> => {
    const app = await startApp({ PAIRS: pairs, CANDLE_BACKFILL: 'off' });
    apps.push(app);
    return app;
  };
  const publish = (t: TestApp, pair: string, price: number, extra: Partial<Tick> = {}) =>
    t.log.publish({ pair, price, source: 'kraken', timestamp: new Date().toISOString(), ...extra });

  const open = async (url: string, viewport = { width: 1100, height: 820 }, initScript?: string): Promise<Opened> => {
    if (!browser) throw new Error('no browser');
    const context = await browser.newContext({ viewport, colorScheme: 'light', locale: 'en-US' });
    contexts.push(context);
    if (initScript !== undefined) await context.addInitScript(initScript);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    return { context, page, errors };
  };

  const waitForState = (page: Page, state: string, timeout = 10_000) => page.waitForSelector(`#status[data-state="${state}"]`, { timeout });
  const priceOf = (page: Page, pair: string) => page.getAttribute(`li[data-pair="${pair}"]`, 'data-price');
  const lastIdOf = (page: Page) => page.getAttribute('#age', 'data-last-id');

  /** Resolves once the card of `pair` shows a price other than the one it shows now. */
  const waitForPriceChange = async (page: Page, pair: string, timeout = 10_000): Promise<void> => {
    const before = await priceOf(page, pair);
    await page.waitForFunction(
      ([p, b]) => document.querySelector(`li[data-pair="${p}"]`)?.getAttribute('data-price') !== b,
      [pair, before] as const,
      { timeout },
    );
  };

  const pickTransport = async (page: Page, kind: string, label: string): Promise<void> => {
    await page.selectOption('#transport', kind);
    await page.waitForFunction((l) => document.querySelector('#status')?.textContent === `Live over ${l}`, label, { timeout: 10_000 });
  };

  it('shows a card per pair, the simulated badge and a chart from history then live ticks, and takes the screenshot', async () => {
    const t = await start();
    await waitForHistory(t); // the simulated source's day of history, for the chart to start from
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    expect(await page.locator('li[data-pair]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pair')))).toEqual(['BTC-EUR', 'BTC-USD', 'ETH-USD']);
    expect(await page.locator('li[data-pair="BTC-USD"] .badge-simulated').isVisible()).toBe(true);
    expect(await page.textContent('#chart-title')).toBe('BTC-USD');
    await page.waitForSelector('#chart[data-points]', { timeout: 10_000 });
    expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThanOrEqual(90);
    // The live ticks move the last candle.
    const lastCandle = await page.getAttribute('#chart', 'data-last-candle');
    await waitForPriceChange(page, 'BTC-USD');
    await page.waitForFunction((c) => document.querySelector('#chart')?.getAttribute('data-last-candle') !== c, lastCandle, { timeout: 10_000 });
    expect(await page.textContent('#age')).toMatch(/^Last tick (just now|\d s ago)$/);
    await page.waitForTimeout(1200); // let the flash animations settle
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
  }, 30_000);

  it('moves prices over each transport, switches without reloading and remembers the choice', async () => {
    const t = await start();
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    for (const { kind, label } of [...TRANSPORTS, TRANSPORTS[0]]) {
      await pickTransport(page, kind, label);
      await waitForPriceChange(page, 'BTC-USD');
    }
    // Switching transport resumes from the last id, but is no resume to report: no banner, none counted.
    expect(await page.locator('#notice').isHidden()).toBe(true);
    expect(await page.getAttribute('#freshness', 'data-resumes')).toBe('0');
    await pickTransport(page, 'socketio', 'Socket.IO');
    await page.reload();
    // The page's script sets the select from storage once it runs (after its first requests), not
    // by the load event: wait for that, rather than read the select's default before it.
    await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('#transport')?.value === 'socketio', undefined, { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'Live over Socket.IO', undefined, { timeout: 10_000 });
    await waitForPriceChange(page, 'ETH-USD');
    expect(errors).toEqual([]);
  }, 60_000);

  it('filters, sorts and selects the chart pair from the keyboard, and fits a phone screen', async () => {
    const t = await start();
    const { page, errors } = await open(t.url, { width: 390, height: 844 });
    await waitForState(page, 'live');
    const pairs = () => page.locator('li[data-pair]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pair')));
    // On a phone the controls are folded behind one button.
    expect(await page.locator('#filter').isVisible()).toBe(false);
    await page.click('#controls-toggle');
    await page.fill('#filter', 'eth/usd');
    expect(await pairs()).toEqual(['ETH-USD']);
    await page.fill('#filter', '');
    await page.selectOption('#sort', 'price');
    expect((await pairs()).at(-1)).toBe('ETH-USD');
    await page.locator('li[data-pair="ETH-USD"] button').focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#chart-title')?.textContent === 'ETH-USD', undefined, { timeout: 10_000 });
    expect(await page.getAttribute('li[data-pair="ETH-USD"] button', 'aria-pressed')).toBe('true');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(errors).toEqual([]);
  }, 30_000);

  for (const { kind, label } of TRANSPORTS) {
    it(`shows offline, then resumes over ${label} and says how many ticks were missed when the network comes back`, async () => {
      const t = await start();
      const { context, page, errors } = await open(t.url);
      await waitForState(page, 'live');
      await pickTransport(page, kind, label);
      await waitForPriceChange(page, 'BTC-USD');

      await context.setOffline(true);
      await waitForState(page, 'offline');
      const lastSeen = await lastIdOf(page);
      // The switch to this transport showed no resume notice (it is no resume); wait for the outage's.
      expect(await page.locator('#notice').isHidden()).toBe(true);
      const noticesBefore = Number((await page.getAttribute('#notice', 'data-seq')) ?? 0);
      await sleep(2500); // the server keeps publishing meanwhile
      const backAt = Date.now();
      await context.setOffline(false);

      await page.waitForFunction(
        (n) => {
          const el = document.querySelector('#notice');
          return Number(el?.getAttribute('data-seq') ?? 0) > n && /missed ticks? recovered/.test(el?.textContent ?? '');
        },
        noticesBefore,
        { timeout: 10_000 },
      );
      expect(await page.getAttribute('#status', 'data-state')).toBe('live');
      const missed = Number(/(\d+) missed/.exec((await page.textContent('#notice')) ?? '')?.[1]);

      // Every tick published while offline came back; at most those published during the reconnect too.
      const after = (ticks: Tick[]) => ticks.filter((x) => lastSeen !== null && compareIds(x.id, lastSeen) > 0);
      const published = after(await allTicks(t));
      const whileOffline = published.filter((x) => Date.parse(x.timestamp) < backAt).length;
      expect(whileOffline).toBeGreaterThan(0);
      expect(missed).toBeGreaterThanOrEqual(whileOffline);
      expect(missed).toBeLessThanOrEqual(published.length);
      await waitForPriceChange(page, 'BTC-USD');
      // Resumes counted in the status line: this reconnection only, not picking the transport.
      expect(await page.getAttribute('#freshness', 'data-resumes')).toBe('1');
      expect(errors.filter((e) => !OUTAGE_NOISE.test(e))).toEqual([]);
    }, 30_000);
  }

  it('opens the chart on the first pair of PAIRS, not the first by name', async () => {
    const t = await startQuiet('ETH-USD,BTC-USD');
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    await page.waitForFunction(() => document.querySelector('#chart-title')?.textContent === 'ETH-USD', undefined, { timeout: 10_000 });
    expect(await page.locator('li[data-pair]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pair')))).toEqual(['BTC-USD', 'ETH-USD']);
    expect(await page.getAttribute('li[data-pair="ETH-USD"] button', 'aria-pressed')).toBe('true');
    expect(errors).toEqual([]);
  });

  it('sorts by price within each quote currency, never euros against dollars', async () => {
    const t = await startQuiet('BTC-USD,ETH-USD,BTC-EUR,ETH-EUR');
    await publish(t, 'BTC-USD', 97_000);
    await publish(t, 'BTC-EUR', 90_000);
    await publish(t, 'ETH-USD', 3_000);
    await publish(t, 'ETH-EUR', 2_800);
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    await page.selectOption('#sort', 'price');
    const pairs = () => page.locator('li[data-pair]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pair')));
    expect(await pairs()).toEqual(['BTC-EUR', 'ETH-EUR', 'BTC-USD', 'ETH-USD']);
    // A live tick that lifts ETH-EUR above BTC-EUR moves it within the euros only.
    await publish(t, 'ETH-EUR', 95_000);
    await page.waitForFunction(() => document.querySelector('li[data-pair]')?.getAttribute('data-pair') === 'ETH-EUR', undefined, { timeout: 10_000 });
    expect(await pairs()).toEqual(['ETH-EUR', 'BTC-EUR', 'BTC-USD', 'ETH-USD']);
    expect(errors).toEqual([]);
  });

  it('shows bid, ask, spread and the 24 h figures a tick carries, no empty boxes, and "simulated" once', async () => {
    const t = await startQuiet('BTC-USD,ETH-USD');
    await publish(t, 'BTC-USD', 97_500, { bid: 97_499.5, ask: 97_500.5, open24h: 96_000, high24h: 98_000, low24h: 95_000.25, volume24h: 1234.567 });
    await publish(t, 'ETH-USD', 3_000, { source: 'simulated' });
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    const figures = (pair: string) =>
      page.locator(`li[data-pair="${pair}"] .ticker-item`).evaluateAll((els) => els.map((e) => [e.getAttribute('data-field'), e.querySelector('.ticker-value')?.textContent]));
    await page.waitForSelector('li[data-pair="BTC-USD"] .ticker-item', { timeout: 10_000 });
    expect(await figures('BTC-USD')).toEqual([
      ['bid', '$97,499.50'],
      ['ask', '$97,500.50'],
      ['spread', '$1.0000 (0.001%)'],
      ['change24h', '+1.56%'],
      ['high24h', '$98,000.00'],
      ['low24h', '$95,000.25'],
      ['volume24h', '1,234.57 BTC'],
    ]);
    expect(await page.locator('li[data-pair="BTC-USD"] .card-ticker').isVisible()).toBe(true);
    expect(await figures('ETH-USD')).toEqual([]);
    expect(await page.locator('li[data-pair="ETH-USD"] .card-ticker').isVisible()).toBe(false);
    const ethText = (await page.locator('li[data-pair="ETH-USD"] button').innerText()).toLowerCase();
    expect(ethText.match(/simulated/g)).toHaveLength(1);
    expect(await page.locator('li[data-pair="BTC-USD"] .card-source').innerText()).toBe('kraken');
    // A later tick without the fields clears them: the card shows what the latest tick carries.
    await publish(t, 'BTC-USD', 97_600);
    await page.waitForFunction(() => document.querySelector('li[data-pair="BTC-USD"]')?.getAttribute('data-price') === '97600', undefined, { timeout: 10_000 });
    expect(await figures('BTC-USD')).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('shows how old a price was on arrival by the server clock, even when this machine runs an hour ahead', async () => {
    const t = await startQuiet('BTC-USD');
    const skewed = 'const realNow = Date.now.bind(Date); Date.now = () => realNow() + 3_600_000;';
    const { page, errors } = await open(t.url, undefined, skewed);
    await waitForState(page, 'live');
    await publish(t, 'BTC-USD', 97_000, { sourceTimestamp: new Date(Date.now() - 4000).toISOString() });
    await page.waitForSelector('#freshness:not([hidden])', { timeout: 10_000 });
    const age = Number(await page.getAttribute('#freshness', 'data-age-ms'));
    // 4 s between the upstream's time and the service's; the skew of an hour does not show.
    expect(age).toBeGreaterThanOrEqual(4000);
    expect(age).toBeLessThan(5000);
    expect(await page.textContent('#freshness')).toMatch(/^Price 4\.\d s old on arrival \(server clock\) · 0 resumes$/);
    expect(await page.textContent('#status')).toBe('Live over Server-Sent Events');
    expect(errors).toEqual([]);
  });

  it('switches the chart to candles from the server, updates the last candle live and labels the axis in the currency', async () => {
    const t = await startQuiet('BTC-USD');
    for (const price of [97_000, 97_300, 96_900, 97_123.45]) await publish(t, 'BTC-USD', price);
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    await page.waitForSelector('#chart[data-mode="line"][data-points]', { timeout: 10_000 });
    await page.selectOption('#chart-mode', 'candles');
    await page.waitForSelector('#chart[data-mode="candles"]', { timeout: 10_000 });
    const lastCandle = async () => JSON.parse((await page.getAttribute('#chart', 'data-last-candle')) ?? 'null') as { time: number; open: number; high: number; low: number; close: number };
    expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThanOrEqual(1);
    const before = await lastCandle();
    expect(before.close).toBe(97_123.45);
    expect(before.high).toBeGreaterThanOrEqual(97_123.45);
    expect(await page.getAttribute('#chart', 'data-axis-label')).toBe('$97,123.45');
    await publish(t, 'BTC-USD', 98_765.5);
    await page.waitForFunction(() => (document.querySelector('#chart')?.getAttribute('data-last-candle') ?? '').includes('98765.5'), undefined, { timeout: 10_000 });
    const after = await lastCandle();
    expect(after).toMatchObject({ close: 98_765.5, high: 98_765.5 });
    // The same candle (15 minutes wide in the 24H range), or the next one if it closed meanwhile.
    expect([before.time, before.time + 900]).toContain(after.time);
    expect(await page.getAttribute('#chart', 'data-axis-label')).toBe('$98,765.50');
    expect(errors).toEqual([]);
  });

  it('remembers a manual dark or light theme beside the system default', async () => {
    const t = await startQuiet('BTC-USD');
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    expect(await page.inputValue('#theme')).toBe('system');
    const light = await background();
    await page.selectOption('#theme', 'dark');
    expect(await page.getAttribute('html', 'data-theme')).toBe('dark');
    expect(await background()).toBe('rgb(13, 17, 23)');
    await page.reload();
    await waitForState(page, 'live');
    expect(await page.inputValue('#theme')).toBe('dark');
    expect(await background()).toBe('rgb(13, 17, 23)');
    await page.selectOption('#theme', 'system');
    expect(await page.getAttribute('html', 'data-theme')).toBeNull();
    expect(await background()).toBe(light);
    expect(errors).toEqual([]);
  });

  it('shows reconnecting with the next delay while the server is down, then the history gap after a restart', async () => {
    const first = await start();
    const { page, errors } = await open(first.url);
    await waitForState(page, 'live');
    await waitForPriceChange(page, 'BTC-USD');

    await first.close();
    await waitForState(page, 'reconnecting');
    expect(await page.textContent('#status')).toMatch(/^Connection lost; reconnecting in \d+(\.\d)? s \(attempt \d+\)$/);

    // A new in-memory instance on the same port cannot resume the old ids: it sends a reset.
    await start(first.port);
    await page.waitForFunction(() => (document.querySelector('#notice')?.textContent ?? '').startsWith('History had a gap'), undefined, { timeout: 20_000 });
    await waitForState(page, 'live');
    expect(await page.getAttribute('#notice', 'data-kind')).toBe('warning');
    await page.waitForFunction(() => document.querySelector('#chart-title')?.textContent === 'BTC-USD', undefined, { timeout: 10_000 });
    await waitForPriceChange(page, 'BTC-USD');
    expect(errors.filter((e) => !OUTAGE_NOISE.test(e))).toEqual([]);
  }, 45_000);
});

function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

async function allTicks(t: TestApp): Promise<Tick[]> {
  const pages = await Promise.all(t.config.pairs.map((pair) => t.stream.history(pair, undefined, 10_000)));
  return pages.flatMap((p) => p.ticks);
}
