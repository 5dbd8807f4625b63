/**
 * One generator run for scripts/bench.mjs, in its own process: prints one JSON line with the
 * result (no samples) and the process's CPU use. `--warmup S` first runs S seconds at the same
 * settings and discards them (JIT warm-up; the target gets the same from a wrk warm-up).
 */
import { runLoad, type LoadMode } from '../src/traffic/loadgen.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const url = args.get('url')!;
const rate = Number(args.get('rate'));
const durationMs = Number(args.get('duration') ?? 10) * 1000;
const connections = Number(args.get('connections') ?? 16);
const mode = (args.get('mode') ?? 'keepalive') as LoadMode;
const client = (args.get('client') ?? 'undici') as 'undici' | 'node';
const warmupMs = Number(args.get('warmup') ?? 0) * 1000;

if (warmupMs > 0) await runLoad({ url, rate, durationMs: warmupMs, connections, mode, client, keepSamples: false });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const r = await runLoad({ url, rate, durationMs, connections, mode, client, keepSamples: false });
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - t0;
const { timeline: _t, timeline100ms: _t100, samples: _s, ...rest } = r;
process.stdout.write(`${JSON.stringify({ ...rest, cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10 })}\n`);
