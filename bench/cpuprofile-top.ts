/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time
 * and the most inclusive time, as shares of all samples (idle excluded from neither).
 * `node bench/dist/bench/cpuprofile-top.js <file.cpuprofile> [N]`
 */
import { readFileSync } from 'node:fs';

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] };
type Profile = { nodes: Node[]; samples: number[] };

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpuprofile-top <file.cpuprofile> [N]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const hits = new Map<number, number>();
for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
const total = profile.samples.length;

const label = (n: Node): string => {
  const f = n.callFrame;
  const where = f.url ? f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/') : '';
  return `${f.functionName || '(anonymous)'} ${where}${where ? `:${f.lineNumber + 1}` : ''}`;
};
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, count] of hits) {
  const leaf = byId.get(id)!;
  self.set(label(leaf), (self.get(label(leaf)) ?? 0) + count);
  // Each function once per sample, however often it recurs on the stack.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + count);
  }
}
const print = (title: string, m: Map<string, number>): void => {
  process.stdout.write(`${title} (${total} samples)\n`);
  for (const [l, c] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${((100 * c) / total).toFixed(1).padStart(6)}%  ${l}\n`);
};
// Self time by package (node_modules/<pkg>), by file of ours, or node: internals and natives.
const groups = new Map<string, number>();
for (const [id, count] of hits) {
  const f = byId.get(id)!.callFrame;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url);
  const g = m ? m[1] : f.url.startsWith('node:') ? 'node:' + f.url.slice(5).split('/')[0] : /\/(dist|src)\//.test(f.url) ? 'ours: ' + f.url.replace(/^.*\/(dist|src)\//, '') : f.url ? f.url : f.functionName;
  groups.set(g, (groups.get(g) ?? 0) + count);
}
process.stdout.on('error', () => process.exit(0));
print('self', self);
print('self by package', groups);
print('inclusive', inclusive);
