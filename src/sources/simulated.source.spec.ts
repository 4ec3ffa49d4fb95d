import { SimulatedSource } from './simulated.source';

const signal = new AbortController().signal;

async function walk(source: SimulatedSource, pairs: string[], steps: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(pairs.map((p) => [p, []]));
  for (let i = 0; i < steps; i++) {
    const { quotes, failed } = await source.fetch(pairs, signal);
    expect(failed).toEqual([]);
    for (const q of quotes) out[q.pair].push(q.price);
  }
  return out;
}

describe(SimulatedSource.name, () => {
  it('starts near plausible prices for BTC, ETH and others', async () => {
    const first = await walk(new SimulatedSource(42), ['BTC-USD', 'ETH-USD', 'SOL-USD'], 1);
    expect(first['BTC-USD'][0]).toBeGreaterThan(96_000);
    expect(first['BTC-USD'][0]).toBeLessThan(98_000);
    expect(first['ETH-USD'][0]).toBeGreaterThan(3_450);
    expect(first['ETH-USD'][0]).toBeLessThan(3_550);
    expect(first['SOL-USD'][0]).toBeGreaterThan(99);
    expect(first['SOL-USD'][0]).toBeLessThan(101);
  });

  it('gives the same prices for the same seed, whatever other pairs are asked', async () => {
    const a = await walk(new SimulatedSource(7), ['BTC-USD'], 50);
    const b = await walk(new SimulatedSource(7), ['ETH-USD', 'BTC-USD'], 50);
    expect(b['BTC-USD']).toEqual(a['BTC-USD']);
  });

  it('gives different prices for another seed', async () => {
    const a = await walk(new SimulatedSource(7), ['BTC-USD'], 10);
    const b = await walk(new SimulatedSource(8), ['BTC-USD'], 10);
    expect(b['BTC-USD']).not.toEqual(a['BTC-USD']);
  });

  it('changes every price on every fetch and keeps them finite and > 0 over a long walk', async () => {
    const prices = await walk(new SimulatedSource(1), ['BTC-USD', 'DOGE-USD'], 5000);
    for (const series of Object.values(prices)) {
      for (let i = 0; i < series.length; i++) {
        expect(Number.isFinite(series[i]) && series[i] > 0).toBe(true);
        if (i > 0) expect(series[i]).not.toBe(series[i - 1]);
      }
    }
  });

  it('rejects with the signal reason when the signal is already aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('stopped');
    controller.abort(reason);
    await expect(new SimulatedSource(1).fetch(['BTC-USD'], controller.signal)).rejects.toBe(reason);
  });
});
