/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Tick } from '../src/shared/wire';
import { startApp, type TestApp } from './support/app';

/**
 * The chart, the 24 h change, the price precision and the phone layout in a real Chromium, at
 * desktop and phone sizes. Like client.e2e-spec.ts it needs Chromium and never skips.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DESKTOP = { width: 1100, height: 820 };
const PHONE = { width: 390, height: 844 };
const HOUR = 3600;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('web client chart and cards in Chromium', () => {
  let browser: Browser | undefined;
  const apps: TestApp[] = [];
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is required for this test and was not found at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** The simulated source polling, with its generated day of history (waited for). */
  const startSimulated = async (): Promise<TestApp> => {
    const t = await startApp({ PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '300', PAIRS: 'BTC-USD,ETH-USD,BTC-EUR' });
    apps.push(t);
    for (const until = Date.now() + 15_000; ; await sleep(100)) {
      const res = (await (await fetch(`${t.url}/api/prices/BTC-USD/candles?interval=15m&limit=96`)).json()) as { candles: unknown[] };
      if (res.candles.length >= 95) return t;
      if (Date.now() > until) throw new Error('no day of history within 15 s');
    }
  };
  /** No poller and no backfill: the test publishes every tick. */
  const startQuiet = async (pairs: string): Promise<TestApp> => {
    const t = await startApp({ PAIRS: pairs, CANDLE_BACKFILL: 'off' });
    apps.push(t);
    return t;
  };
  const publish = (t: TestApp, pair: string, price: number, extra: Partial<Tick> = {}) =>
    t.log.publish({ pair, price, source: 'kraken', timestamp: new Date().toISOString(), ...extra });

  const open = async (url: string, viewport: { width: number; height: number }): Promise<{ page: Page; errors: string[] }> => {
    if (!browser) throw new Error('no browser');
    const context = await browser.newContext({ viewport, colorScheme: 'light', locale: 'en-US' });
    contexts.push(context);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10_000 });
    return { page, errors };
  };
  const chartData = async (page: Page) => {
    const get = async (name: string) => (await page.getAttribute('#chart', `data-${name}`)) ?? '';
    return { range: await get('range'), mode: await get('mode'), points: Number(await get('points')), span: Number(await get('span-seconds')), barSpacing: Number(await get('bar-spacing')) };
  };
  const showRange = async (page: Page, range: string) => {
    await page.click(`#chart-range button[data-range="${range}"]`);
    await page.waitForSelector(`#chart[data-range="${range}"][data-points]:not([data-points="0"])`, { timeout: 10_000 });
    await page.waitForFunction(() => !(document.querySelector('#chart-title')?.textContent ?? '').includes('loading'), undefined, { timeout: 10_000 });
    expect(await page.getAttribute(`#chart-range button[data-range="${range}"]`, 'aria-pressed')).toBe('true');
    return chartData(page);
  };

  for (const [size, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    it(`opens on the last 24 hours, shows 1H · 24H · 7D with bars sized for each, and the live tick moves the last candle (${size})`, async () => {
      const t = await startSimulated();
      const { page, errors } = await open(t.url, viewport);
      await page.waitForSelector('#chart[data-range="24H"][data-points]:not([data-points="0"])', { timeout: 10_000 });
      const day = await chartData(page);
      expect(day).toMatchObject({ range: '24H', mode: 'line' });
      expect(day.points).toBeGreaterThanOrEqual(95);
      expect(day.span).toBeGreaterThanOrEqual(23 * HOUR);
      const width = await page.evaluate(() => document.querySelector('#chart')!.clientWidth);
      for (const range of ['1H', '7D', '24H']) {
        const d = await showRange(page, range);
        if (range === '1H') {
          expect(d.points).toBeGreaterThanOrEqual(30);
          expect(d.points).toBeLessThanOrEqual(60);
          expect(d.span).toBeLessThanOrEqual(HOUR);
        } else {
          expect(d.span).toBeGreaterThanOrEqual(23 * HOUR);
        }
        // The range's bars share the plot's width (the chart less its price axis), even the 7D
        // range with only a day of history: no candle is a slab.
        const bars = { '1H': 60, '24H': 96, '7D': 168 }[range]!;
        await page.waitForFunction(
          ([n, w]) => {
            const spacing = Number(document.querySelector('#chart')?.getAttribute('data-bar-spacing'));
            return spacing * n > 0.6 * w && spacing * n <= w;
          },
          [bars, width] as const,
          { timeout: 5000 },
        );
      }
      // The same 24H buckets drawn as candles. Compared with the line just before the switch, not
      // with the first load: a 15-minute bucket boundary passed during the loop adds a bucket.
      const line = await chartData(page);
      expect(line).toMatchObject({ range: '24H', mode: 'line' });
      await page.selectOption('#chart-mode', 'candles');
      await page.waitForSelector('#chart[data-mode="candles"]');
      expect((await chartData(page)).points).toBe(line.points);
      const last = await page.getAttribute('#chart', 'data-last-candle');
      await page.waitForFunction((c) => document.querySelector('#chart')?.getAttribute('data-last-candle') !== c, last, { timeout: 10_000 });
      if (size === 'phone') {
        // The prices first, the chart within the first screen, the controls folded behind one button.
        const card = await page.locator('li[data-pair]').first().boundingBox();
        const chart = await page.locator('#chart').boundingBox();
        expect(card!.y).toBeLessThan(chart!.y);
        expect(chart!.y + 100).toBeLessThan(PHONE.height);
        for (const control of ['#transport', '#filter', '#sort', '#theme']) expect(await page.locator(control).isVisible()).toBe(false);
        await page.click('#controls-toggle');
        expect(await page.getAttribute('#controls-toggle', 'aria-expanded')).toBe('true');
        for (const control of ['#transport', '#filter', '#sort', '#theme']) expect(await page.locator(control).isVisible()).toBe(true);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      } else {
        expect(await page.locator('#controls-toggle').isVisible()).toBe(false);
        expect(await page.locator('#transport').isVisible()).toBe(true);
      }
      expect(errors).toEqual([]);
    }, 45_000);
  }

  for (const [size, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    it(`greys a card whose price went stale and says how old it is, until a fresh price comes (${size})`, async () => {
      const t = await startApp({ PAIRS: 'BTC-USD,ETH-USD', CANDLE_BACKFILL: 'off', STALE_AFTER_MS: '1500' });
      apps.push(t);
      await publish(t, 'BTC-USD', 97_500);
      await publish(t, 'ETH-USD', 3_000);
      // ETH keeps being confirmed; BTC's sources say nothing more.
      const keepEth = setInterval(() => t.log.confirm('ETH-USD', Date.now()), 200);
      try {
        const { page, errors } = await open(t.url, viewport);
        await page.waitForSelector('li[data-pair="BTC-USD"][data-stale="true"]', { timeout: 5000 });
        expect(await page.textContent('li[data-pair="BTC-USD"] .badge-stale')).toMatch(/^stale · \d+ s old$/);
        expect(await page.locator('li[data-pair="BTC-USD"] .badge-stale').isVisible()).toBe(true);
        const opacity = await page.evaluate(() => getComputedStyle(document.querySelector('li[data-pair="BTC-USD"] .card-price')!).opacity);
        expect(Number(opacity)).toBeLessThan(1);
        expect(await page.getAttribute('li[data-pair="ETH-USD"]', 'data-stale')).toBeNull();
        expect(await page.locator('li[data-pair="ETH-USD"] .badge-stale').isVisible()).toBe(false);
        // A fresh price: the card is itself again.
        await publish(t, 'BTC-USD', 97_600);
        await page.waitForSelector('li[data-pair="BTC-USD"]:not([data-stale])', { timeout: 5000 });
        expect(await page.locator('li[data-pair="BTC-USD"] .badge-stale').isVisible()).toBe(false);
        expect(errors).toEqual([]);
      } finally {
        clearInterval(keepEth);
      }
    });
  }

  it("labels the change as 24 h: from the exchange's ticker, else unknown rather than a change since the page opened", async () => {
    const t = await startQuiet('BTC-USD,ETH-USD');
    await publish(t, 'BTC-USD', 97_500, { open24h: 96_000 });
    await publish(t, 'ETH-USD', 3_000);
    const { page, errors } = await open(t.url, DESKTOP);
    const change = (pair: string) => page.locator(`li[data-pair="${pair}"] .card-change`);
    await page.waitForFunction(() => document.querySelector('li[data-pair="BTC-USD"] .change-value')?.textContent !== '—', undefined, { timeout: 10_000 });
    expect(await change('BTC-USD').locator('.change-label').textContent()).toBe('24 h');
    expect(await change('BTC-USD').locator('.change-value').textContent()).toBe('+1.56%');
    expect(await change('BTC-USD').getAttribute('data-from')).toBe('ticker');
    expect(await change('BTC-USD').getAttribute('title')).toBe("Change over 24 hours, from the exchange's ticker");
    await publish(t, 'ETH-USD', 3_100);
    await page.waitForFunction(() => document.querySelector('li[data-pair="ETH-USD"]')?.getAttribute('data-price') === '3100', undefined, { timeout: 10_000 });
    expect(await change('ETH-USD').locator('.change-value').textContent()).toBe('—');
    expect(await page.getAttribute('li[data-pair="ETH-USD"] button', 'aria-label')).toContain('24 h change not known');
    expect(errors).toEqual([]);
  });

  it("takes the 24 h change from the service's candles where the ticks carry no 24 h open", async () => {
    const t = await startSimulated();
    const { page, errors } = await open(t.url, DESKTOP);
    await page.waitForSelector('li[data-pair="BTC-USD"] .card-change[data-from="candles"]', { timeout: 10_000 });
    expect(await page.textContent('li[data-pair="BTC-USD"] .change-value')).toMatch(/^(\+|\u2212)?\d+\.\d\d%$/);
    expect(errors).toEqual([]);
  });

  it('shows each price with decimals from its magnitude: SOL in cents like BTC', async () => {
    const t = await startQuiet('BTC-USD,SOL-USD,XRP-USD');
    await publish(t, 'BTC-USD', 97_123.456);
    await publish(t, 'SOL-USD', 142.3456);
    await publish(t, 'XRP-USD', 2.345678);
    const { page, errors } = await open(t.url, PHONE);
    const price = (pair: string) => page.textContent(`li[data-pair="${pair}"] .card-price`);
    await page.waitForFunction(() => document.querySelector('li[data-pair="XRP-USD"] .card-price')?.textContent !== '—', undefined, { timeout: 10_000 });
    expect([await price('BTC-USD'), await price('SOL-USD'), await price('XRP-USD')]).toEqual(['$97,123.46', '$142.35', '$2.3457']);
    expect(errors).toEqual([]);
  });
});
