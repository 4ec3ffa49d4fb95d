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

  const open = async (url: string, viewport = { width: 1100, height: 820 }): Promise<Opened> => {
    if (!browser) throw new Error('no browser');
    const context = await browser.newContext({ viewport, colorScheme: 'light' });
    contexts.push(context);
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
    await sleep(6000); // some history for the chart to start from
    const { page, errors } = await open(t.url);
    await waitForState(page, 'live');
    expect(await page.locator('li[data-pair]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pair')))).toEqual(['BTC-EUR', 'BTC-USD', 'ETH-USD']);
    expect(await page.locator('li[data-pair="BTC-USD"] .badge-simulated').isVisible()).toBe(true);
    expect(await page.textContent('#chart-title')).toBe('BTC-EUR');
    const historyPoints = Number(await page.getAttribute('#chart', 'data-points'));
    expect(historyPoints).toBeGreaterThanOrEqual(3);
    await waitForPriceChange(page, 'BTC-EUR');
    await page.waitForFunction((n) => Number(document.querySelector('#chart')?.getAttribute('data-points')) > n, historyPoints, { timeout: 10_000 });
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
    await page.selectOption('#transport', 'socketio');
    await waitForState(page, 'live');
    await page.reload();
    expect(await page.inputValue('#transport')).toBe('socketio');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'Live over Socket.IO', undefined, { timeout: 10_000 });
    await waitForPriceChange(page, 'ETH-USD');
    expect(errors).toEqual([]);
  }, 60_000);

  it('filters, sorts and selects the chart pair from the keyboard, and fits a phone screen', async () => {
    const t = await start();
    const { page, errors } = await open(t.url, { width: 390, height: 844 });
    await waitForState(page, 'live');
    const pairs = () => page.locator('li[data-pair]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pair')));
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
      // The switch to this transport may have shown a resume notice of its own: wait for a newer one.
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
      expect(errors.filter((e) => !OUTAGE_NOISE.test(e))).toEqual([]);
    }, 30_000);
  }

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
    await page.waitForFunction(() => document.querySelector('#chart-title')?.textContent === 'BTC-EUR', undefined, { timeout: 10_000 });
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
