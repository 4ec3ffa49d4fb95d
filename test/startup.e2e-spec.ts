import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import { startApp, type TestApp } from './support/app';
import { freePort } from './support/redis';
import { waitFor } from './support/wait';

const MAIN = path.join(__dirname, '..', 'dist', 'main.js');

describe('start-up', () => {
  it('lists the sources actually in the chain in the listening line (coindesk left out without its key)', async () => {
    expect(fs.existsSync(MAIN)).toBe(true); // `npm run build` (pretest) makes dist/
    const port = await freePort();
    const proc = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'coindesk,simulated', SIMULATED_SEED: '1234', KRAKEN_WS_URL: 'off', COINBASE_WS_URL: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('"msg":"listening"'), 15_000, () => out);
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'listening')).toMatchObject({ sources: ['simulated'], pushFeeds: [], simulatedSeed: 1234 });
      expect(lines.some((l) => String(l.msg).startsWith('coindesk is left out'))).toBe(true);
    } finally {
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 30_000);

  describe('the simulated source', () => {
    const apps: TestApp[] = [];
    afterEach(async () => {
      await Promise.all(apps.splice(0).map((a) => a.close()));
    });
    const firstPrice = async (env: Record<string, string>): Promise<number> => {
      const t = await startApp({ PRICE_SOURCES: 'simulated', POLL_INTERVAL_MS: '100', ...env });
      apps.push(t);
      let price = 0;
      await waitFor(async () => {
        const res = await fetch(`${t.url}/api/prices/BTC-USD`);
        if (res.status === 200) price = ((await res.json()) as { price: number }).price;
        return price > 0;
      }, 5000);
      return price;
    };

    it('starts from a random seed: two starts walk differently', async () => {
      const [a, b] = [await firstPrice({}), await firstPrice({})];
      expect(apps[0].config.simulatedSeed).not.toBe(apps[1].config.simulatedSeed);
      expect(a).not.toBe(b);
    });

    it('replays the same walk with SIMULATED_SEED', async () => {
      expect(await firstPrice({ SIMULATED_SEED: '7' })).toBe(await firstPrice({ SIMULATED_SEED: '7' }));
    });
  });
});
