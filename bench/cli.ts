/** `npm run bench -- [options]`: runs the load and resume benchmark, prints a table, writes JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseOptions, USAGE } from './options';
import { TRANSPORTS } from './protocol';
import { runBench, type BenchResult } from './run';
import type { LatencySummary } from './stats';

const ms = (v: number | null): string => (v === null ? '-' : String(v));
const lat = (l: LatencySummary | undefined): string[] => (l && l.count > 0 ? [ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max)] : ['-', '-', '-', '-']);
const counts = (c: Record<string, number>): string =>
  Object.entries(c)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '-';

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export function formatResult(r: BenchResult): string {
  const o = r.options;
  const out: string[] = [];
  out.push(
    `${r.label}: ${o.pairs.length} pairs, a tick per pair every ${o.tickMs} ms, ${o.durationS} s measured${o.churn ? `, churn every ${o.churn.minMs / 1000}-${o.churn.maxMs / 1000} s` : ''}${o.sioAuth && o.socketio > 0 ? ', Socket.IO subscribing in the handshake' : ''}` +
      `; ${r.machine.nproc} cores, ${r.machine.memGiB} GiB, node ${r.machine.node}, machine ${r.machine.busyBeforePct === null ? '?' : r.machine.busyBeforePct.toFixed(0)}% busy before the load; published ticks in window: ${r.published.ticks} of ${r.published.scheduled} scheduled (${r.published.mode})`,
  );
  const rows = [['transport', 'subs', 'held', 'EMFILE', 'refused', 'delivered', 'missing', 'dup', 'ooo', 'resets', 'drops', 'p50', 'p90', 'p99', 'max']];
  const used = TRANSPORTS.filter((t) => r.transports[t].target > 0);
  for (const t of used) {
    const s = r.transports[t];
    const refused = Object.entries(s.connectFailures).reduce((a, [k, v]) => a + (k === 'EMFILE' ? 0 : v), 0);
    const drops = Object.values(s.drops).reduce((a, v) => a + v, 0);
    rows.push([
      t,
      String(s.target),
      String(s.heldAtStart),
      String(s.emfile),
      String(refused),
      s.deliveredPct === null ? 'n/a' : `${s.deliveredPct.toFixed(s.deliveredPct === 100 ? 0 : 3)}%`,
      String(s.missing),
      String(s.duplicates),
      String(s.outOfOrder),
      String(s.resets),
      String(drops),
      ...lat(s.latency[0]),
    ]);
    if (r.phases.length > 1) rows.push([`  +${r.slow.target} slow`, '', '', '', '', '', '', '', '', '', '', ...lat(s.latency[1])]);
  }
  if (used.length) {
    out.push(table(rows));
    out.push('latency: ms from the tick\'s time field to its arrival at the subscriber, merged over all subscribers');
    out.push(formatWire(r));
  } else out.push('streams: none');
  if (o.churn) {
    const c = [['churn', 'cuts', 'reconnects', 'on another worker', 'replayed', 'to-open p50', 'p99', 'to-1st-tick p50', 'p99', 'max']];
    for (const t of used) {
      const s = r.transports[t];
      // Only SSE names its worker (X-Served-By); with one process nobody moves.
      const moved = t === 'sse' ? String(s.movedWorker) : '-';
      c.push([t, String(s.cuts), String(s.reconnects), moved, String(s.replayed), ms(s.reconnectToOpen.p50), ms(s.reconnectToOpen.p99), ms(s.reconnectToFirstTick.p50), ms(s.reconnectToFirstTick.p99), ms(s.reconnectToFirstTick.max)]);
    }
    out.push(table(c));
  }
  for (const t of used) {
    const s = r.transports[t];
    if (Object.keys(s.connectFailures).length) out.push(`${t} connect failures: ${counts(s.connectFailures)}`);
    if (Object.keys(s.drops).length) out.push(`${t} drops: ${counts(s.drops)}`);
    if (Object.keys(s.reconnectFailures).length) out.push(`${t} reconnect failures: ${counts(s.reconnectFailures)}`);
  }
  const kb = (v: number | null): string => (v === null ? '-' : `${(v / 1024).toFixed(1)} MiB`);
  const sv = r.service;
  out.push(
    `service${r.instances ? ` (instance 1 of ${r.instances.length}; each in the table below)` : ''}${r.workers.processes > 1 ? ` (${r.workers.processes} processes, summed)` : ''}: idle RSS ${kb(sv.idleRssKb)}, loaded ${kb(sv.loadedRssKb)}, ` +
      `per connection ${sv.rssPerConnectionBytes === null ? '-' : `${(sv.rssPerConnectionBytes / 1024).toFixed(1)} KiB`}` +
      `${sv.rssPerConnectionMinBytes === null ? '' : ` (${(sv.rssPerConnectionMinBytes / 1024).toFixed(1)} KiB at the window's lowest RSS)`}, max fds ${ms(sv.maxFds)}${r.workers.processes > 1 ? ` over ${r.workers.processes} processes (each against its own limit: see workers)` : ` of ${ms(sv.fdLimit)}`}`,
  );
  for (const p of r.phases) {
    out.push(
      `  ${p.name}: service CPU ${p.serviceCpuPct === null ? '-' : `${p.serviceCpuPct.toFixed(0)}%`} of a core, RSS ${kb(p.serviceRssKb)} (min ${kb(p.serviceRssMinKb)}, max ${kb(p.serviceRssMaxKb)}), machine busy ${p.machineBusyPct === null ? '-' : `${p.machineBusyPct.toFixed(0)}%`}, accept-queue overflows ${ms(p.listenOverflows)}, kernel TCP memory ${kb(p.tcpKernelMemKb)}`,
    );
  }
  if (r.instances) out.push(formatInstances(r));
  if (r.redis) out.push(formatRedis(r));
  out.push(formatWorkers(r));
  if (r.kill) {
    const k = r.kill;
    out.push(
      k.pid === null || k.atMs === null
        ? `kill: none (${k.error ?? 'no worker'})`
        : `kill: worker ${k.slot ?? '?'} (pid ${k.pid}${k.heldAtPeak === null ? '' : `, ${k.heldAtPeak} conns at the peak`}) got SIGKILL ${k.atS} s into the load phase${k.replacementPid === null ? ', no new process seen in its slot' : `, restarted as pid ${k.replacementPid}`}; ` +
            `${k.dropped} subscribers dropped, ${k.reestablished} established again (drop to open p50 ${ms(k.dropToOpen.p50)} ms, p99 ${ms(k.dropToOpen.p99)} ms, max ${ms(k.dropToOpen.max)} ms)`,
    );
  }
  if (r.storm) out.push(formatStorm(r));
  if (r.rest) out.push(formatRest(r));
  out.push(`ramp: ${r.ramp.seconds.toFixed(1)} s, accept-queue overflows ${ms(r.ramp.listenOverflows)}`);
  out.push(`generator: ${r.generator.workers} workers${r.generator.nice ? ` at nice ${r.generator.nice}` : ''}, ${r.generator.cpuPct.toFixed(0)}% of a core, event-loop delay p99 ${r.generator.loopDelayP99MaxMs.toFixed(1)} ms (max ${r.generator.loopDelayMaxMs.toFixed(1)} ms)`);
  if (r.slow.target > 0) {
    out.push(`slow (${r.slow.transport}, ${r.options.slowReads ? 'control: reading' : 'never read'}): ${r.slow.opened} of ${r.slow.target} opened, ${r.slow.cutByServer} cut by the server, ${r.slow.bytesRead} bytes waiting for them${Object.keys(r.slow.failures).length ? `, failures ${counts(r.slow.failures)}` : ''}`);
  }
  out.push(r.assert.passed ? 'assert: passed' : `assert: FAILED\n  ${r.assert.failures.join('\n  ')}`);
  return out.join('\n');
}

/** Bytes on the wire per delivered tick, per transport. */
export function formatWire(r: BenchResult): string {
  const used = TRANSPORTS.filter((t) => r.transports[t].target > 0);
  const parts = used.map((t) => {
    const s = r.transports[t];
    return `${t} ${s.bytesPerTick === null ? '-' : s.bytesPerTick.toFixed(0)} (${s.wireBytes} bytes, ${s.wireTicks} ticks)`;
  });
  return `bytes per delivered tick (socket bytes received over the window / ticks received; heartbeats, pings and framing included): ${parts.join(', ') || '-'}`;
}

/** --storm: drop to re-established and drop to whole, per subscriber, for all and per transport. */
export function formatStorm(r: BenchResult): string {
  const s = r.storm!;
  const rows = [['storm', 'dropped', 'back', 'whole', 'not whole', 'to-open p50', 'p90', 'p99', 'max', 'to-whole p50', 'p90', 'p99', 'max', 'all back', 'all whole']];
  const row = (name: string, f: typeof s.all): string[] => [
    name,
    String(f.dropped),
    String(f.reestablished),
    String(f.whole),
    String(f.notWhole),
    ms(f.dropToOpen.p50),
    ms(f.dropToOpen.p90),
    ms(f.dropToOpen.p99),
    ms(f.dropToOpen.max),
    ms(f.dropToWhole.p50),
    ms(f.dropToWhole.p90),
    ms(f.dropToWhole.p99),
    ms(f.dropToWhole.max),
    ms(f.lastOpenMs),
    ms(f.lastWholeMs),
  ];
  rows.push(row('all', s.all));
  for (const t of TRANSPORTS.filter((x) => r.transports[x].target > 0)) rows.push(row(t, s.byTransport[t]));
  const head =
    `storm: ${s.trigger} (${s.signal} to ${s.instance !== null ? `instance ${s.instance}, ` : ''}pid ${s.pid ?? '?'}) ${s.atS} s into the load phase` +
    (s.failoverTo.length ? `; its subscribers reconnected to instance${s.failoverTo.length > 1 ? 's' : ''} ${s.failoverTo.join(', ')} (round-robin) and stayed there` : '') +
    (s.trigger === 'worker' ? '' : `; it exited after ${ms(s.exitedAfterMs)} ms, the harness started it again (pid ${s.restartedPid ?? '?'}), answering ${ms(s.upAfterMs)} ms after the signal`) +
    (s.trigger === 'worker' && s.restartedPid !== null ? `; the primary restarted it as pid ${s.restartedPid}` : '') +
    (s.error ? `; error: ${s.error}` : '');
  const w = s.all.signalToWhole;
  return `${head}
${table(rows)}
storm: ms per subscriber from its drop to re-established (to-open) and to whole (every tick it lacked, up to its reconnect, arrived; no duplicate); all back / all whole: ms from the signal to the last one
storm: from the signal to whole (all; not resting on when the generator saw each drop): p50 ${ms(w.p50)}, p90 ${ms(w.p90)}, p99 ${ms(w.p99)} ms`;
}

/** --rest: one row per route. */
export function formatRest(r: BenchResult): string {
  const f = (v: number | null, d = 2): string => (v === null ? '-' : v.toFixed(d));
  const rows = [['route', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'requests', 'non-2xx', 'sock err', 'timeouts', 'bytes/req']];
  for (const x of r.rest ?? []) {
    if (x.error) {
      rows.push([x.route, 'error', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    rows.push([x.route, f(x.reqPerSec, 0), f(x.p50Ms), f(x.p90Ms), f(x.p99Ms), f(x.maxMs), String(x.requests), String(x.non2xx), String(x.socketErrors.connect + x.socketErrors.read + x.socketErrors.write), String(x.socketErrors.timeout), f(x.bytesPerRequest, 0)]);
  }
  const o = r.options.rest!;
  const streams = TRANSPORTS.reduce((a, t) => a + r.transports[t].heldAtStart, 0);
  return `${table(rows)}
rest: wrk -t${Math.min(o.threads, o.connections)} -c${o.connections} -d${o.durationS}s --latency per route after a ${o.warmupS} s warm-up (timeouts: no response within wrk's 2 s, not in the percentiles), ${streams ? `beside ${streams} streams` : 'no streams open'}${r.rest?.some((x) => x.error) ? `; errors: ${r.rest.filter((x) => x.error).map((x) => `${x.route}: ${x.error}`).join('; ')}` : ''}`;
}

/** --instances: one row per instance and transport used: its subscribers' delivery and latency, its leader gauge, CPU and RSS. */
export function formatInstances(r: BenchResult): string {
  const mib = (v: number | null): string => (v === null ? '-' : `${(v / 1024).toFixed(0)} MiB`);
  const used = TRANSPORTS.filter((t) => r.transports[t].target > 0);
  const rows = [['instance', 'pid', 'leader', 'transport', 'subs', 'held', 'delivered', 'missing', 'dup', 'ooo', 'resets', 'p50', 'p90', 'p99', 'max', 'CPU', 'RSS', 'streams at end']];
  for (const i of r.instances ?? []) {
    for (const t of used) {
      const s = i.transports[t];
      const first = t === used[0];
      rows.push([
        first ? `${i.instance}${i.terminated ? ' (SIGTERM)' : ''}` : '',
        first ? (i.terminated ? `${i.terminated.pid}>${i.terminated.restartedPid ?? '?'}` : String(i.pid)) : '',
        first ? `${ms(i.leaderAtPeak)}/${ms(i.leaderAtEnd)}` : '',
        t,
        String(s.target),
        String(s.heldAtStart),
        s.deliveredPct === null ? 'n/a' : `${s.deliveredPct.toFixed(s.deliveredPct === 100 ? 0 : 3)}%`,
        String(s.missing),
        String(s.duplicates),
        String(s.outOfOrder),
        String(s.resets),
        ...lat(s.latency[0]),
        first ? (i.cpuPct === null ? '-' : `${i.cpuPct.toFixed(0)}%`) : '',
        first ? mib(i.rssKb) : '',
        first ? ms(i.streamsAtEnd) : '',
      ]);
    }
  }
  const la = (l: number[] | null): string => (l ? l.map((x) => x.toFixed(2)).join(' ') : '-');
  const t = r.instances?.find((i) => i.terminated);
  const terminated = t?.terminated
    ? `\ninstance ${t.instance} got SIGTERM ${t.terminated.atS} s into the load phase (--storm rolling; pid ${t.terminated.pid}, started again as ${t.terminated.restartedPid ?? '?'}): its line counts the subscribers that started on it, ` +
      `which reconnected to instance${r.storm && r.storm.failoverTo.length > 1 ? 's' : ''} ${r.storm?.failoverTo.join(', ') ?? '?'}; its CPU is both processes' over the load phase, its RSS the restarted one's`
    : '';
  return `${table(rows)}${terminated}\ninstances: leader = price_stream_leader when all were connected / at the end; streams at end = price_stream_subscribers at the end of the window; CPU over the load phase (% of a core), RSS at its end; load average ${la(r.machine.loadAvgBefore)} before the load, ${la(r.machine.loadAvgEnd)} at the end of the window (the load generator runs on the same cores)`;
}

/** --redis-stats: Redis over the window, per published tick. */
export function formatRedis(r: BenchResult): string {
  const x = r.redis!;
  const n = (v: number | null, d = 1): string => (v === null ? '-' : v.toFixed(d));
  const s = x.windowMs / 1000;
  return [
    `redis ${x.before.version ?? '?'} (pid ${x.before.pid ?? '?'}, ${x.before.connectedClients ?? '?'} clients connected at the start, ${x.after.connectedClients ?? '?'} at the end; other clients' work counts too): ` +
      `${s.toFixed(1)} s window, ${x.ticks} ticks published; CPU ${n(x.cpuPct)}% of a core (INFO cpu)${x.procCpuPct === null ? '' : `, ${n(x.procCpuPct)}% (/proc)`}`,
    `  commands: ${x.commands} (${n(x.commands / s)}/s), ${n(x.commandsPerTick)} per tick: ${x.byCommand.map((c) => `${c.command} ${n(c.perTick, 2)}`).join(', ') || '-'}`,
    `  bytes out: ${x.netOutputBytes ?? '-'} (${x.netOutputBytes === null ? '-' : n(x.netOutputBytes / s / 1024)} KiB/s), ${n(x.netOutputBytesPerTick, 0)} per tick; bytes in ${n(x.netInputBytesPerTick, 0)} per tick`,
    ...(x.instances
      ? [
          `  to the started instances only (their ${x.instances.connections} connections${x.instances.closed ? `, ${x.instances.closed} closed in the window and not counted` : ''}, ss -ti): ${x.instances.bytesReceived} bytes out (${n(x.instances.bytesReceived / s / 1024)} KiB/s), ` +
            `${n(x.instances.bytesReceivedPerTick, 0)} per tick; ${n(x.instances.bytesSentPerTick, 0)} bytes in per tick`,
        ]
      : []),
  ].join('\n');
}

/** `workers: 1: 19012 conns, 410 MiB RSS, 45% CPU, ...; 2: ...`, or one process. */
export function formatWorkers(r: BenchResult): string {
  const w = r.workers;
  const mib = (v: number | null): string => (v === null ? '-' : `${(v / 1024).toFixed(0)} MiB`);
  const pct = (v: number | null): string => (v === null ? '-' : `${v.toFixed(0)}%`);
  if (w.workers.length === 0) return 'workers: one process (no price_stream_worker_subscribers on /metrics, no child process)';
  const conns = (x: (typeof w.workers)[number]): string =>
    x.connsPeak === null && x.connsEnd === null ? 'conns ?' : `${ms(x.connsPeak)} conns${x.connsEnd !== x.connsPeak ? ` (${ms(x.connsEnd)} at the end)` : ''}`;
  const parts = w.workers.map(
    (x) =>
      `${x.worker}: ${conns(x)}, ${mib(x.rssKbPeak)} RSS${x.rssKbEnd !== null && mib(x.rssKbEnd) !== mib(x.rssKbPeak) ? ` (${mib(x.rssKbEnd)} at the end)` : ''}, ${pct(x.cpuPct)} CPU, ` +
      `max ${ms(x.maxFds)} fds of ${ms(x.fdLimit)}, pid ${x.pids.length ? x.pids.join(' then ') : '?'}`,
  );
  if (w.primary) parts.push(`primary pid ${w.primary.pid}: ${mib(w.primary.rssKbPeak)} RSS, ${pct(w.primary.cpuPct)} CPU, max ${ms(w.primary.maxFds)} fds`);
  const head = w.gauge ? 'workers' : 'workers (no price_stream_worker_subscribers on /metrics)';
  const note = w.workers.length === 1 && !w.primary ? ' (one process)' : '';
  return `${head}${note}: ${parts.join('; ')}; RSS at the peak, CPU over the load phase`;
}

async function main(): Promise<void> {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const log = (line: string): void => {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  };
  const result = await runBench(opts, log);
  const root = path.resolve(__dirname, '..', '..', '..');
  const file = opts.out ?? path.join(root, 'bench', 'results', `${result.startedAt.replace(/[:.]/g, '-')}-${result.label}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ command: `npm run bench -- ${process.argv.slice(2).map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`, ...result }, null, 2)}\n`);
  const code = opts.assert && !result.assert.passed ? 1 : 0;
  // Exit explicitly once the table is out: under a Node parent (the e2e spec) the process stayed
  // alive after its work was done, with only its stdio pipes left as handles.
  process.stdout.write(`${formatResult(result)}\nresult: ${path.relative(process.cwd(), file)}\n`, () => process.exit(code));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
