/**
 * The report's tables as plain cells, built once from the model; markdown.ts and html.ts only
 * format them (so a number cannot differ between report.md and report.html).
 */
import type { Group, ReportModel, Target } from './model.js';
import { drillsOf, groupLabel, groupsOf, SHARE_MODE_TEXT, strategyParts } from './model.js';
import type { Recommendation } from './recommend.js';
import { BASELINE_MAX_FAILED_SHARE, RUN_FLAG_TEXT } from '../results/types.js';
import { DASH, fmtBand, fmtDuration, fmtInt, fmtLat, fmtMs, fmtNum, fmtOutage, fmtPct, fmtSpread, plural } from './format.js';

export interface Cell {
  text: string;
  /** 'bad' = outside the expected band (flagged); 'good' = inside */
  mark?: 'bad' | 'good';
  num?: boolean;
}

export interface Table {
  headers: string[];
  rows: Cell[][];
}

const c = (text: string, extra: Omit<Cell, 'text'> = {}): Cell => ({ text, ...extra });
const n = (text: string, extra: Omit<Cell, 'text'> = {}): Cell => ({ text, num: true, ...extra });

export function headerFacts(m: ReportModel): [string, string][] {
  const r = m.results;
  const t = r.topology;
  const measured = r.runs.filter((x) => x.supported !== false).length;
  const facts: [string, string][] = [
    ['Lab', r.lab],
    ['Topology', `${t.name}: ${plural(t.controlPlanes, 'control plane')}, ${plural(t.workers, 'worker')}${t.racks !== undefined ? `, ${plural(t.racks, 'rack')}` : ''}`],
    ['Provider', `${r.provider.name}${r.provider.emulated ? ' — emulated Talos control plane' : ' — real Talos'}`],
    ['Real components', Object.keys(r.provider.components).sort().map((k) => `${k} ${r.provider.components[k]}`).join(', ') || DASH],
    ['Network', `${m.network.l2 ? 'L2' : ''}${m.network.l2 && m.network.bgp ? ' + ' : ''}${m.network.bgp ? 'BGP router' : m.network.l2 ? ' only (no BGP)' : ''}${m.network.inferred ? ' (inferred from the strategies that ran)' : ''}`],
    ['Started', r.startedAt],
    ['Bring-up', fmtDuration(r.bringUpMs)],
    ...(r.durationMs !== undefined ? ([['Duration', fmtDuration(r.durationMs)]] as [string, string][]) : []),
    ['Runs', `${measured} measured, ${r.runs.length - measured} unsupported${r.interrupted ? ' — INTERRUPTED: the run was stopped before the end; only the runs that completed are here' : ''}`],
    ...(r.parallel && r.parallel > 1 ? ([['Lab instances', `${r.parallel} at once (each strategy on its own instance of the lab)`]] as [string, string][]) : []),
  ];
  const open = r.runs.filter((x) => x.recovered === false).length;
  if (open) facts.push(['Not recovered', `${plural(open, 'run')} had not recovered when observation stopped: shown as "> N" (a lower bound), never as a figure`]);
  return facts;
}

export function strategyTable(m: ReportModel): Table {
  return {
    headers: ['strategy', 'API endpoint', 'Services', 'status'],
    rows: m.strategies.map((s) => {
      const u = m.unsupported.find((x) => x.strategy === s.id);
      return [c(s.id), c(s.cp || strategyParts(s.id).cp), c(s.svc || strategyParts(s.id).svc), c(u ? `unsupported: ${u.reason}` : s.description ?? 'measured', u ? { mark: 'bad' } : {})];
    }),
  };
}

export function unsupportedTable(m: ReportModel): Table {
  return { headers: ['strategy', 'reason', 'runs not measured'], rows: m.unsupported.map((u) => [c(u.strategy), c(u.reason), n(String(u.runs))]) };
}

function shareCell(g: Group): string {
  if (!g.nodeShare.length) return DASH;
  const top = g.nodeShare.filter(([, f]) => f > 0);
  const shown = top.slice(0, 4).map(([node, f]) => `${node} ${fmtPct(f)}`);
  return shown.join(', ') + (top.length > 4 ? `, +${top.length - 4}` : '');
}

function ipCell(g: Group): string {
  return g.clientIpPreserved === null ? DASH : g.clientIpPreserved === 'mixed' ? 'mixed' : g.clientIpPreserved ? 'yes' : 'no';
}

const lat3 = (l: Group['latency'] | null) => (l ? `${fmtLat(l.p50?.median)} / ${fmtLat(l.p99?.median)} / ${fmtLat(l.p999?.median)}` : DASH);

export function baselineTable(m: ReportModel, target: Target): Table {
  const gs = groupsOf(m, target, 'baseline');
  const svc = target === 'service';
  return {
    headers: ['strategy', ...(svc ? ['Service (ETP)'] : []), 'p50 ms', 'p99 ms', 'p99.9 ms', 'throughput req/s', 'errors', 'clean', 'served by', 'spread', ...(svc ? ['client IP preserved'] : [])],
    rows: gs.map((g) => [
      c(g.strategy),
      ...(svc ? [c(g.service ? `${g.service}${g.externalTrafficPolicy ? ` (${g.externalTrafficPolicy})` : ''}` : DASH)] : []),
      n(fmtSpread(g.latency.p50, fmtLat)),
      n(fmtSpread(g.latency.p99, fmtLat)),
      n(fmtSpread(g.latency.p999, fmtLat)),
      n(fmtSpread(g.throughput, (x) => fmtNum(x, 1))),
      n(fmtSpread(g.errors, fmtInt)),
      baselineCleanCell(g),
      c(shareCell(g)),
      c(SHARE_MODE_TEXT[g.shareMode]),
      ...(svc ? [c(ipCell(g))] : []),
    ]),
  };
}

/** whether the window without a fault was clean (BASELINE_MAX_FAILED_SHARE): its latencies describe the mechanism only then */
function baselineCleanCell(g: Group): Cell {
  const u = g.baselineUnclean;
  if (!u) return c('yes', { mark: 'good' });
  const of = g.runs.length > 1 ? ` in ${u.n}/${g.runs.length} repeats` : '';
  return c(`NO: ${fmtPct(u.worstShare)} failed${of} (over ${fmtPct(BASELINE_MAX_FAILED_SHARE)}: host or lab, not the mechanism)`, { mark: 'bad' });
}

function bandCell(g: Group): Cell {
  if (!g.band) return c(DASH);
  if (!g.judged) return c('not judged');
  const unclean = (g.uncleanBefore ? `; ${g.uncleanBefore} with the ${RUN_FLAG_TEXT.uncleanBefore}` : '') + (g.healOpen ? `; ${g.healOpen} ${RUN_FLAG_TEXT.healOpen}` : '');
  if (g.outside === 0) return c(`inside${unclean ? ` (${unclean.slice(2)})` : ''}`, { mark: 'good' });
  const load = g.outsideHostLoad ? `; ${g.outsideHostLoad} ${RUN_FLAG_TEXT.hostLoad}` : '';
  return c(`OUTSIDE (${g.outside}/${g.judged} repeats${load}${unclean})`, { mark: 'bad' });
}

/** "3 (2–3) of 4 — victim 2, survivors 1 (0–1)" */
function resetsCell(g: Group): string {
  if (!g.resets) return DASH;
  const of = g.streams ? ` of ${fmtInt(g.streams.median)}` : '';
  const split = g.resets.max > 0 && (g.resetsOnVictim || g.resetsOnSurvivors) ? ` — victim ${fmtSpread(g.resetsOnVictim, fmtInt)}, survivors ${fmtSpread(g.resetsOnSurvivors, fmtInt)}` : '';
  return `${fmtSpread(g.resets, fmtInt)}${of}${split}`;
}

export function failoverDrills(m: ReportModel, target: Target): string[] {
  return drillsOf(m, target).filter((d) => d !== 'baseline');
}

/** one row per drill × strategy: the outage and what came with it */
export function failoverTable(m: ReportModel, target: Target, drill?: string): Table {
  const gs = groupsOf(m, target).filter((g) => g.drill !== 'baseline' && (drill === undefined || g.drill === drill));
  const api = target === 'api';
  return {
    headers: [
      ...(drill ? [] : ['drill']),
      'strategy',
      'victim',
      'repeats',
      'outage median (min–max)',
      'expected band',
      'band check',
      'errors',
      'resets of streams (victim / survivors)',
      ...(api ? ['KubePrism (internal) outage'] : ['client IP preserved']),
    ],
    rows: gs.map((g) => [
      ...(drill ? [] : [c(g.drill)]),
      c(groupLabel(g)),
      c(g.victims.join(', ') || DASH),
      n(String(g.runs.length)),
      n(fmtOutage(g), g.medianOutside || g.unrecovered ? { mark: 'bad' } : {}),
      n(fmtBand(g.band)),
      bandCell(g),
      n(fmtSpread(g.errors, fmtInt)),
      n(resetsCell(g)),
      ...(api ? [n(fmtSpread(g.internalOutage, fmtMs))] : [c(ipCell(g))]),
    ]),
  };
}

/** latency p50 / p99 / p99.9 (medians over repeats) before / during / after the injection */
export function latencyTable(m: ReportModel, target: Target, drill?: string): Table {
  const gs = groupsOf(m, target).filter((g) => g.drill !== 'baseline' && (drill === undefined || g.drill === drill));
  return {
    headers: [...(drill ? [] : ['drill']), 'strategy', 'before p50 / p99 / p99.9 ms', 'during', 'after', 'throughput req/s', 'served by'],
    rows: gs.map((g) => [
      ...(drill ? [] : [c(g.drill)]),
      c(groupLabel(g)),
      n(lat3(g.latencyByPhase.before)),
      n(lat3(g.latencyByPhase.during)),
      n(lat3(g.latencyByPhase.after)),
      n(fmtSpread(g.throughput, (x) => fmtNum(x, 1))),
      c(shareCell(g)),
    ]),
  };
}

export function phaseTable(m: ReportModel, target: Target): Table {
  const gs = groupsOf(m, target).filter((g) => g.drill !== 'baseline' && (g.phases.detect || g.phases.announce || g.phases.converge));
  return {
    headers: ['drill', 'strategy', 'detect', 'announce', 'converge (client path back)'],
    rows: gs.map((g) => [c(g.drill), c(groupLabel(g)), n(fmtSpread(g.phases.detect, fmtMs)), n(fmtSpread(g.phases.announce, fmtMs)), n(fmtSpread(g.phases.converge, fmtMs))]),
  };
}

export function bandsTable(m: ReportModel): Table {
  const gs = m.groups.filter((g) => g.band);
  return {
    headers: ['target', 'drill', 'strategy', 'band', 'basis (configured timers)'],
    rows: gs.map((g) => [c(g.target), c(g.drill), c(groupLabel(g)), n(fmtBand(g.band)), c(g.bandBasis ?? DASH)]),
  };
}

export function decisionTable(rec: Recommendation): Table {
  return {
    headers: ['article: strategy', 'complexity', 'API', 'services', 'recommended for', 'in this run', 'measured API spread', 'measured Service spread (ETP Local)', 'API crash outage', 'Service crash outage'],
    rows: rec.rows.map((r) => [
      c(r.chosen ? `${r.title} (the article’s choice here)` : r.title, r.chosen ? { mark: 'good' } : {}),
      c(r.complexity),
      c(r.api),
      c(r.services),
      c(r.recommendedFor),
      c(r.inThisRun),
      c(r.measuredApi),
      c(r.measuredServices),
      n(r.apiCrash),
      n(r.serviceCrash),
    ]),
  };
}

export function findingsTable(rec: Recommendation): Table {
  return {
    headers: ['claim', 'the article says', 'measured', 'verdict'],
    rows: rec.findings.map((f) => [c(f.topic), c(f.article), c(f.measured.join('; ')), c(f.verdict, f.verdict === 'disagrees' || f.verdict === 'mixed' ? { mark: 'bad' } : f.verdict === 'agrees' ? { mark: 'good' } : {})]),
  };
}

export function runNotes(m: ReportModel): string[] {
  return m.results.runs.flatMap((r) => (r.notes ?? []).map((note) => `${r.strategy} ${r.target}${r.service ? `:${r.service}` : ''} ${r.drill} #${(r.repeat ?? 0) + 1}: ${note}`));
}

/** where the long form of the fidelity notes lives, seen from the report (the writer passes the real path) */
export const DEFAULT_FIDELITY_DOC = 'docs/fidelity.md';

/** a link to a note's long form; the id is used as the anchor as is when it is a plain slug */
export function fidelityHref(doc: string, id: string): string {
  return `${doc}#${/^[a-z0-9-]+$/.test(id) ? id : encodeURIComponent(id)}`;
}

export interface ReportOptions {
  /** the path or URL of docs/fidelity.md as seen from the report (default: the repository-relative path) */
  fidelityDoc?: string;
}

export interface FidelityRow {
  target: Target;
  drill: string;
  strategy: string;
  /** note ids, in the run's order */
  ids: string[];
}

/** per run (target × drill × strategy/Service): the fidelity notes that apply, and each note's text once */
export function fidelitySection(m: ReportModel): { rows: FidelityRow[]; notes: { id: string; text: string }[] } {
  const rows: FidelityRow[] = [];
  const notes = new Map<string, string>();
  for (const g of m.groups) {
    if (!g.fidelity.length) continue;
    rows.push({ target: g.target, drill: g.drill, strategy: groupLabel(g), ids: g.fidelity.map((f) => f.id) });
    for (const f of g.fidelity) if (!notes.has(f.id)) notes.set(f.id, f.text);
  }
  return { rows, notes: [...notes].map(([id, text]) => ({ id, text })) };
}

export const HOW_TO_READ: string[] = [
  'Outage: what a client saw — from the first failed probe to the first of a run of successful probes (probes every ≤ 10 ms); 0 when nothing failed. Baseline runs have none.',
  'Expected band: the outage the configured timers of the mechanism predict (basis at the end); a measured outage outside it is flagged OUTSIDE.',
  'Figures over repeats: median, with min–max in brackets when the repeats differ.',
  'Errors: failed load requests plus failed probes. Resets: long-lived connections broken, on the node acted on (victim) / on nodes that stayed (survivors), of the streams opened.',
  `Served by: share of successful requests per node that answered (the API server for the API, the pod’s node for a Service). Active-passive: one node ≥ 90 %; active-active: two or more nodes ≥ 5 %. Under ETP Cluster a Service’s pods on other nodes answer even when one node takes all ingress (L2); ETP Local shows where traffic enters.`,
  'Latency: p50 / p99 / p99.9 of successful load requests, placed at their intended send time (open loop); before / during / after the injection.',
  'Detect / announce / converge: time after the injection until a surviving node’s mechanism reacted, until a gratuitous ARP or route change for the address, until the client’s path was back.',
  'KubePrism (internal) outage: the worst outage seen by in-cluster clients going through localhost:7445.',
];
