// Starts the built service (`node dist/main.js`, simulated source, a free port) as an operator
// would, waits until it is ready, writes what GET <path> answers to <file>, and stops it.
// Extra environment as KEY=VALUE arguments. Used by .ci/run for a real /metrics scrape
// (promtool check metrics) and the served OpenAPI document (/docs-json, Redocly lint).
//   node scripts/fetch-from-service.mjs /metrics /tmp/metrics.txt [WORKERS=2 REDIS_URL=...]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [path, file, ...extra] = process.argv.slice(2);
if (!path?.startsWith('/') || !file) {
  console.error('usage: node scripts/fetch-from-service.mjs /path out-file [KEY=VALUE...]');
  process.exit(2);
}
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const env = { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', LOG_LEVEL: 'warn', ...Object.fromEntries(extra.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) };
const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const proc = spawn(process.execPath, [main], { env, stdio: ['ignore', 'ignore', 'inherit'] });
const exited = new Promise((resolve) => proc.on('exit', resolve));
const url = `http://127.0.0.1:${port}`;
try {
  const deadline = Date.now() + 60_000;
  while ((await fetch(`${url}/health/ready`).then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`the service at ${url} did not become ready`);
    await new Promise((r) => setTimeout(r, 250));
  }
  // One REST request, so the request-duration histogram has series to check.
  await fetch(`${url}/api/prices/BTC-USD`);
  const res = await fetch(url + path);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  writeFileSync(file, await res.text());
} catch (err) {
  console.error(err.message);
  process.exitCode = 1;
} finally {
  proc.kill('SIGTERM');
  await exited;
}
