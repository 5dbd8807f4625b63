/**
 * Pure functions over raw load samples (SampleColumns): window statistics, before/during/after an
 * injection, and chart timelines. They work the same on a live engine's typed arrays and on
 * samples that travelled as JSON from a client agent.
 *
 * Time placement: every attempt is placed at its INTENDED send time (the open-loop schedule), so
 * a request that was due during an outage counts in the outage's window even if its reply (or
 * its timeout) came later.
 */
import { OUTCOME_CANCELLED, OUTCOME_OK, OUTCOME_PENDING, type SampleColumns } from './engine.js';
import { LatencyHistogram, type LatencyStats } from './histogram.js';

export interface WindowStats {
  /** epoch ms, inclusive */
  fromMs: number;
  /** epoch ms, exclusive */
  toMs: number;
  /** attempts intended in the window that have an outcome */
  requests: number;
  errors: number;
  errorsByKind: Record<string, number>;
  /** over successful replies only; failures are in errorsByKind */
  latencyMs: LatencyStats;
  /** successful replies per second of window */
  throughputRps: number;
  /** node -> fraction of the successful replies that named a node */
  nodeShare: Record<string, number>;
  nodeCounts: Record<string, number>;
  /** distinct client IPs the targets reported seeing */
  clientIps: string[];
}

export interface TimelineBucket {
  /** bucket start, ms after the run's startedAt */
  tMs: number;
  ok: number;
  failed: number;
  /** p99 / p50 latency of the bucket's successful replies; null when it had none */
  p99Ms: number | null;
  p50Ms: number | null;
  /** node -> successful replies in the bucket (omitted when no reply named a node) */
  nodes?: Record<string, number>;
}

/** Index range [lo, hi) of attempts intended in [fromMs, toMs). */
export function indexRange(c: SampleColumns, fromMs: number, toMs: number): [number, number] {
  const lo = Math.max(0, Math.ceil((fromMs - c.startedAt) / c.intervalMs - 1e-9));
  const hi = Math.min(c.count, Math.max(lo, Math.ceil((toMs - c.startedAt) / c.intervalMs - 1e-9)));
  return [Math.min(lo, c.count), hi];
}

/** End (epoch ms) of the schedule the samples cover. */
export function samplesEnd(c: SampleColumns): number {
  return c.startedAt + c.count * c.intervalMs;
}

export function windowStats(c: SampleColumns, fromMs = c.startedAt, toMs = samplesEnd(c)): WindowStats {
  const [lo, hi] = indexRange(c, fromMs, toMs);
  const h = new LatencyHistogram();
  const byKind = new Map<number, number>();
  const nodeCounts = new Map<number, number>();
  const ips = new Set<number>();
  let requests = 0;
  let ok = 0;
  for (let i = lo; i < hi; i++) {
    const o = c.outcome[i];
    if (o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
    requests++;
    if (o === OUTCOME_OK) {
      ok++;
      h.record(c.latencyMs[i]);
      const n = c.node[i];
      if (n) nodeCounts.set(n, (nodeCounts.get(n) ?? 0) + 1);
      const ip = c.clientIp[i];
      if (ip) ips.add(ip);
    } else {
      byKind.set(o, (byKind.get(o) ?? 0) + 1);
    }
  }
  const span = Math.max(0, Math.min(toMs, samplesEnd(c)) - Math.max(fromMs, c.startedAt));
  const errorsByKind: Record<string, number> = {};
  for (const [k, v] of [...byKind].sort((a, b) => b[1] - a[1])) errorsByKind[c.kinds[k] ?? 'other'] = v;
  return {
    fromMs,
    toMs,
    requests,
    errors: requests - ok,
    errorsByKind,
    latencyMs: h.stats(),
    throughputRps: span > 0 ? round3((ok * 1000) / span) : 0,
    ...share(c.nodes, nodeCounts),
    clientIps: [...ips].map((i) => c.clientIps[i]).sort(),
  };
}

export interface PhaseStats {
  before: WindowStats;
  during: WindowStats;
  after: WindowStats;
}

/**
 * Latency before / during / after an injection: before = [start, injectAt), during =
 * [injectAt, recoveredAt), after = [recoveredAt, end). With no recovery time (no outage seen, or
 * never recovered) pass `duringMs` to bound "during"; otherwise it runs to the end.
 */
export function phaseStats(c: SampleColumns, injectAt: number, recoveredAt?: number | null, duringMs?: number): PhaseStats {
  const end = samplesEnd(c);
  const during = recoveredAt != null && recoveredAt > injectAt ? recoveredAt : duringMs !== undefined ? injectAt + duringMs : end;
  const cut = Math.min(during, end);
  return {
    before: windowStats(c, c.startedAt, injectAt),
    during: windowStats(c, injectAt, cut),
    after: windowStats(c, cut, end),
  };
}

/** Buckets of `bucketMs` over the whole run (1000 for the per-second timeline, 100 for charts). */
export function timeline(c: SampleColumns, bucketMs: number): TimelineBucket[] {
  const out: TimelineBucket[] = [];
  const total = c.count * c.intervalMs;
  const lat: number[] = [];
  for (let b = 0; b * bucketMs < total; b++) {
    const [lo, hi] = indexRange(c, c.startedAt + b * bucketMs, c.startedAt + (b + 1) * bucketMs);
    let ok = 0;
    let failed = 0;
    lat.length = 0;
    let nodes: Map<number, number> | undefined;
    for (let i = lo; i < hi; i++) {
      const o = c.outcome[i];
      if (o === OUTCOME_PENDING || o === OUTCOME_CANCELLED) continue;
      if (o === OUTCOME_OK) {
        ok++;
        lat.push(c.latencyMs[i]);
        const n = c.node[i];
        if (n) (nodes ??= new Map()).set(n, (nodes.get(n) ?? 0) + 1);
      } else failed++;
    }
    lat.sort((x, y) => x - y);
    const bucket: TimelineBucket = {
      tMs: b * bucketMs,
      ok,
      failed,
      p99Ms: lat.length ? round3(lat[Math.ceil(lat.length * 0.99) - 1]) : null,
      p50Ms: lat.length ? round3(lat[Math.ceil(lat.length * 0.5) - 1]) : null,
    };
    if (nodes) bucket.nodes = Object.fromEntries([...nodes].map(([k, v]) => [c.nodes[k], v]));
    out.push(bucket);
  }
  return out;
}

/**
 * Is the client's source IP preserved? true when the targets reported only the client's own
 * address(es), false when they reported others (SNAT), null when no reply said.
 */
export function clientIpPreserved(reported: string[], clientAddresses: string[]): boolean | null {
  if (!reported.length) return null;
  const mine = new Set(clientAddresses);
  return reported.every((ip) => mine.has(ip));
}

function share(names: string[], counts: Map<number, number>): { nodeShare: Record<string, number>; nodeCounts: Record<string, number> } {
  let total = 0;
  for (const v of counts.values()) total += v;
  const nodeShare: Record<string, number> = {};
  const nodeCounts: Record<string, number> = {};
  for (const [k, v] of [...counts].sort((a, b) => names[a[0]].localeCompare(names[b[0]]))) {
    nodeShare[names[k]] = Math.round((v / total) * 10000) / 10000;
    nodeCounts[names[k]] = v;
  }
  return { nodeShare, nodeCounts };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
