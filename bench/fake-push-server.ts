/**
 * A fake Kraken WS v2 ticker feed for latency runs (`bench/push-latency.sh`): the fixture's
 * frames, one trade per pair every PUSH_MS (default 300), each stamped with the moment it is
 * sent, so that a tick's `sourceTimestamp` is the exchange's send time. Prints its URL and runs
 * until SIGTERM. 127.0.0.1 only.
 *
 *   PAIRS=BTC-USD PUSH_MS=300 node bench/dist/bench/fake-push-server.js
 */
import { FakePushServer } from '../test/support/fake-push';

async function main(): Promise<void> {
  const pairs = (process.env.PAIRS ?? 'BTC-USD').split(',');
  const pushMs = Number(process.env.PUSH_MS ?? 300);
  const prices: Record<string, number> = Object.fromEntries(pairs.map((p, i) => [p, 50_000 / (i + 1)]));
  const feed = await FakePushServer.start('kraken', { prices, heartbeatMs: 1000 });
  process.stdout.write(`${feed.url}\n`);
  let step = 0;
  // A small random walk: every push a new price, so every push is a tick.
  const timer = setInterval(() => {
    step++;
    for (const pair of pairs) {
      prices[pair] = Math.round(prices[pair] * (1 + (step % 2 ? 1 : -1) * (0.0001 + Math.random() * 0.0005)) * 100) / 100;
      feed.push(pair, prices[pair], new Date());
    }
  }, pushMs);
  const stop = (): void => {
    clearInterval(timer);
    void feed.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void main();
