/**
 * `lab load <url> --rate R --duration D [--connections C] [--mode keepalive|new-connection]
 * [--timeout MS] [--json]`: one open-loop run against any http(s) URL, outside a lab too. The CLI
 * binds flags and calls runLoadCommand; `--json` prints ONE object with the field names of a run
 * in results.json (requests, errors, throughputRps, latencyMs) plus the generator's own fields.
 */
import type { Writable } from 'node:stream';
import { UsageError } from '../util/errors.js';
import { runLoad, type LoadMode, type LoadResult } from './loadgen.js';

export interface LoadCommandOptions {
  /** req/s */
  rate: number | string;
  /** seconds */
  durationS: number | string;
  connections?: number | string;
  mode?: LoadMode | string;
  json?: boolean;
  timeoutMs?: number | string;
  /** https: PEM CA file; without it certificates are not verified */
  caFile?: string;
  insecure?: boolean;
  client?: 'undici' | 'node';
  /** Ctrl-C: stop now and report what was measured */
  signal?: AbortSignal;
  /** where to print (default process.stdout) */
  out?: Writable;
}

function num(name: string, v: number | string | undefined, dflt: number | undefined, min: number, integer = false): number {
  if (v === undefined || v === '') {
    if (dflt === undefined) throw new UsageError(`--${name} is required`);
    return dflt;
  }
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${v}'`);
  }
  return n;
}

export async function runLoadCommand(url: string, o: LoadCommandOptions): Promise<LoadResult> {
  if (!/^https?:\/\//.test(url ?? '')) throw new UsageError(`lab load: <url> must start with http:// or https://, got '${url ?? ''}'`);
  const rate = num('rate', o.rate, undefined, 0.001);
  const durationS = num('duration', o.durationS, undefined, 0.001);
  const connections = num('connections', o.connections, 16, 1, true);
  const timeoutMs = num('timeout', o.timeoutMs, 2000, 1);
  const mode = (o.mode ?? 'keepalive') as LoadMode;
  if (mode !== 'keepalive' && mode !== 'new-connection') throw new UsageError(`--mode must be keepalive or new-connection, got '${mode}'`);
  const out = o.out ?? process.stdout;
  const r = await runLoad({
    url,
    rate,
    durationMs: durationS * 1000,
    connections,
    mode,
    timeoutMs,
    caFile: o.caFile,
    insecure: o.insecure,
    client: o.client,
    signal: o.signal,
    keepSamples: false,
  });
  out.write(o.json ? `${JSON.stringify(jsonView(r))}\n` : formatLoad(r));
  return r;
}

/** The `--json` object: results.json run field names first, then the generator's extras. */
export function jsonView(r: LoadResult): Record<string, unknown> {
  return {
    url: r.url,
    requests: r.requests,
    errors: r.errors,
    errorsByKind: r.errorsByKind,
    throughputRps: r.throughputRps,
    latencyMs: r.latencyMs,
    nodeShare: r.nodeShare,
    clientIps: r.clientIps,
    targetRps: r.targetRps,
    achievedRps: r.achievedRps,
    durationMs: r.durationMs,
    mode: r.mode,
    connections: r.connections,
    startedAt: r.startedAt,
    serviceLatencyMs: r.serviceLatencyMs,
    sendLagMs: r.sendLagMs,
    timeline: r.timeline,
  };
}

export function formatLoad(r: LoadResult): string {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const l = r.latencyMs;
  const s = r.serviceLatencyMs;
  const lines = [
    `load ${r.url}: ${r.targetRps} req/s for ${(r.durationMs / 1000).toFixed(1)} s, ${r.mode === 'keepalive' ? `keep-alive over ${r.connections} connections` : 'new connection per request'}`,
    `  requests    ${r.requests}  (errors ${r.errors})   sent ${r.achievedRps.toFixed(1)} req/s   ok ${r.throughputRps.toFixed(1)} req/s`,
    `  latency ms  p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  p99.9 ${f(l.p999)}  max ${f(l.max)}   (from the intended send time)`,
    `  service ms  p50 ${f(s.p50)}  p99 ${f(s.p99)}  max ${f(s.max)}   (from the actual send: what a closed-loop tool shows)`,
  ];
  const errs = Object.entries(r.errorsByKind);
  if (errs.length) lines.push(`  errors      ${errs.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const nodes = Object.entries(r.nodeShare);
  if (nodes.length) lines.push(`  nodes       ${nodes.map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ')}`);
  if (r.clientIps.length) lines.push(`  client IPs  ${r.clientIps.join(', ')} (as the target saw them)`);
  if (r.sendLagMs.p99 > 10) lines.push(`  note        sends lagged up to ${f(r.sendLagMs.p99)} ms (p99): the generator or the connections could not keep up`);
  return `${lines.join('\n')}\n`;
}
