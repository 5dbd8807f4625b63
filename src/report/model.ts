/**
 * results.json → the report model: runs grouped per target × strategy × drill (× Service), each
 * figure as median and min–max over the repeats. Pure: every renderer (Markdown, HTML, charts,
 * terminal summary) reads this and nothing else, so they all show the same numbers.
 */
import { rolesOf } from '../strategies/registry.js';
import { BASELINE_MAX_FAILED_SHARE, failedShare, type FidelityRecord, type LatencyStats, type Results, type RunRecord } from '../results/types.js';
import { byString } from './format.js';

export type Target = 'api' | 'service';
export const TARGETS: Target[] = ['api', 'service'];
export const TARGET_TITLE: Record<Target, string> = { api: 'Kubernetes API endpoint', service: 'LoadBalancer Service' };

/** Median and range of one figure over the repeats that measured it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** how many repeats had a value */
  n: number;
}

/**
 * How requests spread over nodes. A node serving at least this fraction = one node takes all
 * the traffic (active-passive); below it, with two or more nodes serving, = active-active.
 */
export const ONE_NODE_SHARE = 0.9;
/** a node counts as serving when it answered at least this fraction */
export const SERVING_SHARE = 0.05;

export type ShareMode = 'active-passive' | 'active-active' | 'single-node' | 'unknown';
export const SHARE_MODE_TEXT: Record<ShareMode, string> = {
  'active-passive': 'active-passive (one node)',
  'active-active': 'active-active (spread)',
  'single-node': 'single node',
  unknown: 'not measured',
};

export interface LatencySpread {
  p50: Spread | null;
  p99: Spread | null;
  p999: Spread | null;
}

export interface Group {
  /** stable id: `${target}.${strategy}.${drill}[.${service}]`, also used for chart ids */
  id: string;
  target: Target;
  strategy: string;
  drill: string;
  service?: string;
  externalTrafficPolicy?: 'Cluster' | 'Local';
  runs: RunRecord[];
  victims: string[];
  /** the outages of the repeats that recovered (an outage that never ended is no figure) */
  outage: Spread | null;
  /** repeats whose outage had not ended when observation stopped, and the longest lower bound */
  unrecovered: { n: number; atLeastMs: number } | null;
  /** the expected band over the repeats (the widest when they differ) */
  band: { min: number; max: number } | null;
  bandBasis?: string;
  /** repeats with both an outage and a band, and how many of them fell outside it */
  judged: number;
  outside: number;
  /** of those outside, how many by no more than their probing client stood still (RunRecord.outsideReason) */
  outsideHostLoad: number;
  /** repeats whose fault went in while the probe was still failing (RunRecord.cleanBeforeFault) */
  uncleanBefore: number;
  /** repeats whose path failed again after the fault was undone and had not recovered when observation stopped (healOutage.recovered false) */
  healOpen: number;
  /** baselines only: repeats where more than BASELINE_MAX_FAILED_SHARE of the attempts failed, and the worst share */
  baselineUnclean: { n: number; worstShare: number } | null;
  medianOutside: boolean | null;
  errors: Spread | null;
  probeFailures: Spread | null;
  resets: Spread | null;
  resetsOnVictim: Spread | null;
  resetsOnSurvivors: Spread | null;
  streams: Spread | null;
  requests: Spread | null;
  throughput: Spread | null;
  latency: LatencySpread;
  latencyByPhase: { before: LatencySpread | null; during: LatencySpread | null; after: LatencySpread | null };
  /** node → median share over the repeats (0 where a repeat did not see the node), largest first */
  nodeShare: [string, number][];
  shareMode: ShareMode;
  /** true / false when every repeat agreed, 'mixed' when not, null when not measured */
  clientIpPreserved: boolean | 'mixed' | null;
  phases: { detect: Spread | null; announce: Spread | null; converge: Spread | null };
  internalOutage: Spread | null;
  /** the repeat whose outage is the median (lower middle for an even count): its timeline is charted */
  representative: RunRecord;
  /** the known differences from the real components that apply to these runs (results.json `fidelity`), once per id, in the runs' order */
  fidelity: FidelityRecord[];
}

export interface UnsupportedStrategy {
  strategy: string;
  reason: string;
  /** drill × target pairs recorded as unsupported */
  runs: number;
}

export interface StrategyInfo {
  id: string;
  cp: string;
  svc: string;
  description?: string;
  supported: boolean;
  reason?: string;
  conflicts: string[];
}

export type SizeClass = 'minecraft' | 'smb' | 'enterprise';

export interface ReportModel {
  results: Results;
  nodes: number;
  strategies: StrategyInfo[];
  drills: string[];
  targets: Target[];
  groups: Group[];
  unsupported: UnsupportedStrategy[];
  network: { l2: boolean; bgp: boolean; inferred: boolean };
}

// ---------------------------------------------------------------------------------------------

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function spread(values: (number | null | undefined)[]): Spread | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** outside the band, allowing the probe's resolution (`bandSlackMs` of the run, see measure.ts) */
export function isOutside(outageMs: number | null | undefined, band: { min: number; max: number } | null | undefined, slackMs = 0): boolean | null {
  if (outageMs === null || outageMs === undefined || !band) return null;
  return outageMs < band.min - slackMs || outageMs > band.max + slackMs;
}

function latencySpread(stats: (LatencyStats | undefined)[]): LatencySpread | null {
  const s = stats.filter((x): x is LatencyStats => !!x);
  if (!s.length) return null;
  return { p50: spread(s.map((x) => x.p50)), p99: spread(s.map((x) => x.p99)), p999: spread(s.map((x) => x.p999)) };
}

export function shareMode(share: [string, number][], nodes: number): ShareMode {
  if (!share.length) return 'unknown';
  if (nodes <= 1) return 'single-node';
  if (share[0]![1] >= ONE_NODE_SHARE) return 'active-passive';
  if (share.filter(([, f]) => f >= SERVING_SHARE).length >= 2) return 'active-active';
  return 'unknown';
}

function medianShare(runs: RunRecord[]): [string, number][] {
  const withShare = runs.filter((r) => r.nodeShare && Object.keys(r.nodeShare).length);
  if (!withShare.length) return [];
  const nodes = [...new Set(withShare.flatMap((r) => Object.keys(r.nodeShare!)))];
  return nodes
    .map((n): [string, number] => [n, median(withShare.map((r) => r.nodeShare![n] ?? 0))])
    .sort((a, b) => b[1] - a[1] || byString(a[0], b[0]));
}

function clientIp(runs: RunRecord[]): boolean | 'mixed' | null {
  const v = runs.map((r) => r.clientIpPreserved).filter((x): x is boolean => typeof x === 'boolean');
  if (!v.length) return null;
  return v.every((x) => x === v[0]) ? v[0]! : 'mixed';
}

/** the fidelity notes of the repeats, once per id (repeats of one run carry the same notes) */
function fidelityOf(runs: RunRecord[]): FidelityRecord[] {
  const out = new Map<string, FidelityRecord>();
  for (const r of runs) for (const f of Array.isArray(r.fidelity) ? r.fidelity : []) if (f && typeof f.id === 'string' && !out.has(f.id)) out.set(f.id, { id: f.id, text: String(f.text ?? '') });
  return [...out.values()];
}

function representative(runs: RunRecord[]): RunRecord {
  const sorted = [...runs].sort((a, b) => (a.outageMs ?? Infinity) - (b.outageMs ?? Infinity) || (a.repeat ?? 0) - (b.repeat ?? 0));
  const measured = sorted.filter((r) => r.outageMs !== null && r.outageMs !== undefined);
  const pool = measured.length ? measured : sorted;
  return pool[Math.floor((pool.length - 1) / 2)]!;
}

function baselineUnclean(runs: RunRecord[]): Group['baselineUnclean'] {
  const shares = runs.map(failedShare).filter((x): x is number => x !== null && x > BASELINE_MAX_FAILED_SHARE);
  return shares.length ? { n: shares.length, worstShare: Math.max(...shares) } : null;
}

export function buildGroup(runs: RunRecord[], nodes: number): Group {
  const r0 = runs[0]!;
  const ordered = [...runs].sort((a, b) => (a.repeat ?? 0) - (b.repeat ?? 0));
  const bands = ordered.map((r) => r.expectedOutageMs).filter((b): b is { min: number; max: number } => !!b && Number.isFinite(b.min) && Number.isFinite(b.max));
  const band = bands.length ? { min: Math.min(...bands.map((b) => b.min)), max: Math.max(...bands.map((b) => b.max)) } : null;
  const slack = Math.max(0, ...ordered.map((r) => r.bandSlackMs ?? 0));
  // an outage that never ended is outside every band
  const verdicts = ordered.map((r) => (r.recovered === false ? true : isOutside(r.outageMs, r.expectedOutageMs ?? band, r.bandSlackMs ?? 0))).filter((x): x is boolean => x !== null);
  const outage = spread(ordered.filter((r) => r.recovered !== false).map((r) => r.outageMs));
  const open = ordered.filter((r) => r.recovered === false);
  const unrecovered = open.length ? { n: open.length, atLeastMs: Math.max(...open.map((r) => r.outageMs ?? 0)) } : null;
  const share = medianShare(ordered);
  const service = r0.target === 'service' ? r0.service : undefined;
  return {
    id: [r0.target, r0.strategy, r0.drill, ...(service ? [service] : [])].join('.'),
    target: r0.target,
    strategy: r0.strategy,
    drill: r0.drill,
    ...(service ? { service } : {}),
    ...(r0.target === 'service' && r0.externalTrafficPolicy ? { externalTrafficPolicy: r0.externalTrafficPolicy } : {}),
    runs: ordered,
    victims: [...new Set(ordered.map((r) => r.victim).filter((v): v is string => typeof v === 'string' && v !== ''))].sort(byString),
    outage,
    unrecovered,
    band,
    ...(ordered.find((r) => r.expectedBasis)?.expectedBasis ? { bandBasis: ordered.find((r) => r.expectedBasis)!.expectedBasis } : {}),
    judged: verdicts.length,
    outside: verdicts.filter((x) => x).length,
    outsideHostLoad: ordered.filter((r) => r.outsideReason === 'host-load' && r.withinBand === false).length,
    uncleanBefore: ordered.filter((r) => r.cleanBeforeFault === false).length,
    healOpen: ordered.filter((r) => r.healOutage?.recovered === false).length,
    baselineUnclean: r0.drill === 'baseline' ? baselineUnclean(ordered) : null,
    medianOutside: outage ? isOutside(outage.median, band, slack) : null,
    errors: spread(ordered.map((r) => r.errors)),
    probeFailures: spread(ordered.map((r) => r.probeFailures)),
    resets: spread(ordered.map((r) => r.resets)),
    resetsOnVictim: spread(ordered.map((r) => r.resetsOnVictim)),
    resetsOnSurvivors: spread(ordered.map((r) => r.resetsOnSurvivors)),
    streams: spread(ordered.map((r) => r.streams)),
    requests: spread(ordered.map((r) => r.requests)),
    throughput: spread(ordered.map((r) => r.throughputRps)),
    latency: latencySpread(ordered.map((r) => r.latencyMs)) ?? { p50: null, p99: null, p999: null },
    latencyByPhase: {
      before: latencySpread(ordered.map((r) => r.latencyByPhaseMs?.before)),
      during: latencySpread(ordered.map((r) => r.latencyByPhaseMs?.during)),
      after: latencySpread(ordered.map((r) => r.latencyByPhaseMs?.after)),
    },
    nodeShare: share,
    shareMode: shareMode(share, nodes),
    clientIpPreserved: r0.target === 'service' ? clientIp(ordered) : null,
    phases: {
      detect: spread(ordered.map((r) => r.phases?.detectMs)),
      announce: spread(ordered.map((r) => r.phases?.announceMs)),
      converge: spread(ordered.map((r) => r.phases?.convergeMs)),
    },
    internalOutage: spread(ordered.map((r) => r.internalOutageMs)),
    representative: representative(ordered),
    fidelity: fidelityOf(ordered),
  };
}

/** cp/svc parts of '<cp>+<svc>' (the strategy id format of the model). */
export function strategyParts(id: string): { cp: string; svc: string } {
  const i = id.indexOf('+');
  return i < 0 ? { cp: id, svc: '' } : { cp: id.slice(0, i), svc: id.slice(i + 1) };
}

/** does the strategy announce anything over BGP (asked of its mechanisms' traits)? */
export function usesBgp(strategy: string): boolean {
  const { cp, svc } = rolesOf(strategy);
  return Boolean(cp?.traits.bgp || svc?.traits.bgp);
}

/** Order of first appearance, with baseline first. */
function drillOrder(runs: RunRecord[]): string[] {
  const seen = [...new Set(runs.map((r) => r.drill))];
  return seen.includes('baseline') ? ['baseline', ...seen.filter((d) => d !== 'baseline')] : seen;
}

export function buildModel(results: Results): ReportModel {
  const runs = results.runs ?? [];
  const nodes = (results.topology.controlPlanes ?? 0) + (results.topology.workers ?? 0);
  const strategies: StrategyInfo[] = [];
  const seen = new Set<string>();
  for (const s of results.strategies ?? []) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    strategies.push({ id: s.id, cp: s.cp, svc: s.svc, ...(s.description ? { description: s.description } : {}), supported: s.supported !== false, ...(s.reason ? { reason: s.reason } : {}), conflicts: s.conflicts ?? [] });
  }
  for (const r of runs) {
    if (seen.has(r.strategy)) continue;
    seen.add(r.strategy);
    const { cp, svc } = strategyParts(r.strategy);
    const unsupported = runs.find((x) => x.strategy === r.strategy && x.supported === false);
    const supported = runs.some((x) => x.strategy === r.strategy && x.supported !== false);
    strategies.push({ id: r.strategy, cp, svc, supported: supported || !unsupported, ...(!supported && unsupported?.reason ? { reason: unsupported.reason } : {}), conflicts: [] });
  }
  const sIndex = new Map(strategies.map((s, i) => [s.id, i]));
  const drills = drillOrder(runs);
  const dIndex = new Map(drills.map((d, i) => [d, i]));

  const byKey = new Map<string, RunRecord[]>();
  const unsupportedRuns = new Map<string, RunRecord[]>();
  for (const r of runs) {
    if (r.supported === false) {
      unsupportedRuns.set(r.strategy, [...(unsupportedRuns.get(r.strategy) ?? []), r]);
      continue;
    }
    const key = [r.target, r.strategy, r.drill, r.target === 'service' ? (r.service ?? '') : ''].join('\u0000');
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  const groups = [...byKey.values()]
    .map((rs) => buildGroup(rs, nodes))
    .sort(
      (a, b) =>
        TARGETS.indexOf(a.target) - TARGETS.indexOf(b.target) ||
        dIndex.get(a.drill)! - dIndex.get(b.drill)! ||
        sIndex.get(a.strategy)! - sIndex.get(b.strategy)! ||
        byString(a.service ?? '', b.service ?? ''),
    );

  const unsupported: UnsupportedStrategy[] = [];
  for (const s of strategies) {
    const rs = unsupportedRuns.get(s.id) ?? [];
    if (s.supported && !rs.length) continue;
    const reason = s.reason ?? rs.find((r) => r.reason)?.reason ?? 'no reason recorded';
    unsupported.push({ strategy: s.id, reason, runs: rs.length });
  }

  const inferredBgp = runs.some((r) => r.supported !== false && usesBgp(r.strategy));
  return {
    results,
    nodes,
    strategies,
    drills,
    targets: TARGETS.filter((t) => groups.some((g) => g.target === t)),
    groups,
    unsupported,
    network: results.network ? { l2: results.network.l2, bgp: results.network.bgp, inferred: false } : { l2: true, bgp: inferredBgp, inferred: true },
  };
}

// ---------------------------------------------------------------------------------------------
// selections the renderers share

export function groupsOf(m: ReportModel, target: Target, drill?: string): Group[] {
  return m.groups.filter((g) => g.target === target && (drill === undefined || g.drill === drill));
}

export function drillsOf(m: ReportModel, target: Target): string[] {
  return m.drills.filter((d) => m.groups.some((g) => g.target === target && g.drill === d));
}

/** "talos-vip+metallb-l2" or "talos-vip+metallb-l2 · web-local (ETP Local)" */
export function groupLabel(g: Group): string {
  return g.service ? `${g.strategy} · ${g.service}${g.externalTrafficPolicy ? ` (ETP ${g.externalTrafficPolicy})` : ''}` : g.strategy;
}

export function sizeClass(r: Results): { cls: SizeClass; why: string } {
  const t = r.topology;
  const nodes = t.controlPlanes + t.workers;
  const desc = `${t.controlPlanes} control plane${t.controlPlanes === 1 ? '' : 's'} + ${t.workers} worker${t.workers === 1 ? '' : 's'}${t.racks && t.racks > 1 ? ` in ${t.racks} racks` : ''}`;
  if (r.lab === 'minecraft' || r.lab === 'smb' || r.lab === 'enterprise') return { cls: r.lab, why: `the ${r.lab} lab: ${desc}` };
  if ((t.racks ?? 1) > 1 || nodes > 20) return { cls: 'enterprise', why: `${desc} (more than 20 nodes or more than one rack)` };
  if (nodes <= 3) return { cls: 'minecraft', why: `${desc} (at most 3 nodes)` };
  return { cls: 'smb', why: `${desc} (4–20 nodes on one L2)` };
}

export const DRILL_TEXT: Record<string, string> = {
  baseline: 'no fault: the steady state under load',
  'graceful-shutdown': 'the node holding the address shuts down cleanly (its components resign, withdraw, leave)',
  crash: 'the node holding the address dies without a goodbye (all its traffic dropped, processes killed): peers notice only by timeouts',
  freeze: 'the node holding the address hangs (processes stopped; the kernel still answers ARP)',
  partition: 'the node holding the address is cut off the network while its processes run on',
  'link-flap': 'the link of the node holding the address goes down and up',
  'node-leave': 'a node withdraws from BGP (session shut down): the router re-hashes ECMP flows',
  'node-join': 'a node joins BGP again: the router re-hashes ECMP flows',
  'garp-ignored': 'the router ignores gratuitous ARP (sticky ARP cache): the path heals by neighbour timers only',
  'vip-loss-internal': 'the VIP holder is cut off: external clients lose the VIP, in-cluster clients go through KubePrism (localhost:7445)',
  'class-conflict': 'two controllers claim the same Service (no loadBalancerClass)',
};
