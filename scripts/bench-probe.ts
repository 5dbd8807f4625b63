/**
 * The outage probe beside a busy load generator, in one process as in the client's traffic agent:
 * the probe on the generator's event loop (`startOutageProbe`, how the agent ran before) versus
 * the probe in its worker thread (`ProbeWorker`, how it runs now). Loopback only, bounded runs.
 *
 * Two local targets (scripts/bench-target.ts, one process each): one takes the load, one answers
 * the probe, so the probe's target is not the one the load saturates. The probe runs at the
 * labs' settings (10 ms interval, 200 ms timeout: labs/*.yaml `probeIntervalMs`/`probeTimeoutMs`);
 * every target answers at once, so a probe slower than 200 ms measured the client, not the target.
 * Per run: probe samples, failed ones (their kinds), samples over 200 ms (failed or "ok" late),
 * latency percentiles; the main thread's event-loop delay (perf_hooks) and the load's achieved
 * rate show that both modes loaded the loop alike.
 *
 * Usage: node --import tsx scripts/bench-probe.ts [--duration S] [--repeat N] [--rates R1,R2] [--write]
 *   --rates: offered load rates in req/s (default 5000,30000; above 10,000 with 64 connections, else 16)
 *   --write replaces the section of docs/benchmarks.md that starts at its marker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startLoad } from '../src/traffic/loadgen.js';
import { startOutageProbe, type ProbeSample } from '../src/traffic/outage.js';
import { ProbeWorker } from '../src/traffic/probe-worker.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const D = opt('duration', 10);
const REPEAT = opt('repeat', 1);
const write = argv.includes('--write');
const PROBE = { intervalMs: 10, timeoutMs: 200 };
/** load levels: offered rate and keep-alive connections (by default the last one over-saturates one core) */
const ratesArg = argv.indexOf('--rates');
const LEVELS = (ratesArg >= 0 ? argv[ratesArg + 1]!.split(',').map(Number) : [5_000, 30_000]).map((rate) => ({ rate, connections: rate > 10_000 ? 64 : 16 }));
export const MARKER = '<!-- bench-probe: scripts/bench-probe.ts writes from here to the end -->';

const log = (m: string) => process.stderr.write(`[bench-probe] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startTarget(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts/bench-target.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(Number(buf.trim()));
    });
    child.once('exit', (c) => reject(new Error(`bench target exited (${c})`)));
  });
  return { child, url: `http://127.0.0.1:${port}/` };
}

interface Row {
  mode: 'event loop' | 'worker';
  rate: number;
  connections: number;
  samples: number;
  failed: number;
  kinds: Record<string, number>;
  over200: number;
  lateOk: number;
  p50: number;
  p99: number;
  max: number;
  loopP99: number;
  loopMax: number;
  achievedRps: number;
  cpu: number;
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function runOne(mode: Row['mode'], level: (typeof LEVELS)[number], loadUrl: string, probeUrl: string, pw: ProbeWorker): Promise<Row> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const load = startLoad({ url: loadUrl, rate: level.rate, connections: level.connections, durationMs: D * 1000, keepSamples: false });
  // the probe starts once the load runs, as in a drill (the agent starts it first, but the load is
  // what matters here and needs its first second to saturate)
  await sleep(500);
  loop.enable();
  const probe = mode === 'worker' ? await pw.start({ target: probeUrl, ...PROBE }) : startOutageProbe({ target: probeUrl, ...PROBE });
  await sleep(D * 1000 - 1500);
  const samples: ProbeSample[] = await probe.stop();
  loop.disable();
  const l = await load.stop(true);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const lat = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  const kinds: Record<string, number> = {};
  for (const s of samples) if (!s.ok) kinds[s.kind ?? 'other'] = (kinds[s.kind ?? 'other'] ?? 0) + 1;
  return {
    mode,
    rate: level.rate,
    connections: level.connections,
    samples: samples.length,
    failed: samples.filter((s) => !s.ok).length,
    kinds,
    over200: samples.filter((s) => s.latencyMs > PROBE.timeoutMs).length,
    lateOk: samples.filter((s) => s.ok && s.latencyMs > PROBE.timeoutMs).length,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    max: lat.at(-1) ?? NaN,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
    achievedRps: l.achievedRps,
    cpu: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 1000) / 10,
  };
}

const facts = {
  date: new Date().toISOString(),
  nproc: os.availableParallelism(),
  cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
  kernel: os.release(),
  node: process.version,
  load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
};

const loadTarget = await startTarget();
const probeTarget = await startTarget();
// the targets are this run's children: end them with it, also when it is interrupted
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    loadTarget.child.kill('SIGTERM');
    probeTarget.child.kill('SIGTERM');
    process.exit(130);
  });
}
const pw = new ProbeWorker();
const rows: Row[] = [];
try {
  // warm-up: JIT for the generator and the targets, and the worker booted (the agent boots it at start)
  const release = await pw.retain();
  log('warm-up 2 s');
  await runOneWarm();
  for (let r = 0; r < REPEAT; r++) {
    for (const level of LEVELS) {
      // alternate the order so drift in the machine's load does not favour one mode
      const modes: Row['mode'][] = (r + LEVELS.indexOf(level)) % 2 ? ['worker', 'event loop'] : ['event loop', 'worker'];
      for (const mode of modes) {
        log(`${mode}: load ${level.rate} req/s ×${level.connections}, probe every ${PROBE.intervalMs} ms for ${D} s`);
        const row = await runOne(mode, level, loadTarget.url, probeTarget.url, pw);
        log(`  probe ${row.samples} samples, ${row.failed} failed, ${row.over200} over 200 ms; loop delay p99 ${row.loopP99.toFixed(1)} ms`);
        rows.push(row);
      }
    }
  }
  await release();
} finally {
  await pw.terminate();
  loadTarget.child.kill('SIGTERM');
  probeTarget.child.kill('SIGTERM');
}

async function runOneWarm(): Promise<void> {
  const load = startLoad({ url: loadTarget.url, rate: LEVELS[0]!.rate, connections: LEVELS[0]!.connections, durationMs: 2000, keepSamples: false });
  const a = startOutageProbe({ target: probeTarget.url, ...PROBE, durationMs: 2000 });
  const b = await pw.start({ target: probeTarget.url, ...PROBE, durationMs: 2000 });
  await Promise.all([load.done, a.done]);
  await b.stop();
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '—');
const n = (x: number) => Math.round(x).toLocaleString('en-US');
const table = [
  '| probe runs on | load offered (keep-alive) | load sent/s | generator CPU | main loop delay p99 / max (ms) | probe samples | failed (kinds) | samples > 200 ms (of which "ok") | probe latency p50 / p99 / max (ms) |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.mode} | ${n(r.rate)} req/s ×${r.connections} | ${n(r.achievedRps)} | ${r.cpu}% | ${f1(r.loopP99)} / ${f1(r.loopMax)} | ${r.samples} | ${r.failed}${r.failed ? ` (${Object.entries(r.kinds).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''} | **${r.over200}** (${r.lateOk}) | ${f1(r.p50)} / ${f1(r.p99)} / ${f1(r.max)} |`,
  ),
].join('\n');

// a generator far below its offered rate at the low level means the whole process was starved
// of CPU (other jobs on the machine, or this run's nice level): then the rows compare starvation,
// not where the probe runs
const low = rows.filter((r) => r.rate === LEVELS[0]!.rate);
const reached = low.length ? Math.min(...low.map((r) => r.achievedRps / r.rate)) : 1;
const contended = reached < 0.95;
const nice = os.getPriority();

const md = `${MARKER}
## Outage probe off the load generator's event loop

Produced by \`${nice ? `nice -n ${nice} ` : ''}node --import tsx scripts/bench-probe.ts --duration ${D} --repeat ${REPEAT}${ratesArg >= 0 ? ` --rates ${argv[ratesArg + 1]}` : ''} --write\`
(${facts.date}; ${facts.nproc} CPUs, ${facts.cpu}, Linux ${facts.kernel}, Node ${facts.node}; load
average at start ${facts.load}).

One process, as the client's traffic agent: the open-loop load generator (undici, keep-alive)
against one local target process, and the outage probe (new connection every ${PROBE.intervalMs} ms,
${PROBE.timeoutMs} ms timeout, the labs' settings) against a second one, for ${D} s per row. "event loop" =
the probe on the generator's thread (how the agent ran it before); "worker" = the probe in its
worker thread (src/traffic/probe-worker.ts, how the agent runs it now). Both targets answer at
once, so a probe sample over ${PROBE.timeoutMs} ms is delay on the client's side. "main loop delay" is the
generator thread's event-loop delay (perf_hooks) while the probe ran.

${table}
${
  contended
    ? `
**This run was contended:** at ${n(LEVELS[0]!.rate)} req/s the generator reached only ${Math.round(reached * 100)} % of its offered
rate, so the process got a fraction of a core (other jobs on the machine${nice ? `, and this run's nice ${nice}` : ''}). Every row then
measures CPU starvation of the whole process, in both modes; they do not show where the probe should
run. Repeat the command on an otherwise idle machine.
`
    : `
The load generator reached its offered rate at ${n(LEVELS[0]!.rate)} req/s, so the machine was not starved: the difference
between the rows is where the probe's timers run. What is left over ${PROBE.timeoutMs} ms in the worker rows is the
OS scheduler on ${facts.nproc} cores shared by the generator, two targets and the probe.
`
}`;

process.stdout.write(md);
if (write) {
  const file = join(root, 'docs/benchmarks.md');
  const old = readFileSync(file, 'utf8');
  const i = old.indexOf(MARKER);
  writeFileSync(file, `${(i >= 0 ? old.slice(0, i) : `${old.trimEnd()}\n\n`)}${md}`);
  log('wrote docs/benchmarks.md');
}
