/**
 * What the live page shows, as a pure reducer over the run's event stream: `reduce(state, event)`
 * returns a new state and never touches its input, no DOM, no I/O, no clock (time is the events'
 * `t`, so a recorded stream replayed at any speed gives the same picture).
 *
 * The same code runs in three places: in the live server (which keeps the state so a browser
 * that connects late gets it as one snapshot), in the page itself (the server serves this file
 * transpiled to plain JavaScript), and in unit tests. That is why this module has TYPE-ONLY
 * imports: once the types are erased nothing is left to resolve in a browser.
 *
 * Memory stays bounded over a run of hours: probe points are 100 ms buckets of the last 60 s per
 * address, markers and the event feed are short rings, results rows are capped, BGP and route
 * tables are keyed by what the topology has.
 */
import type { RunEvent } from '../orchestrator/events.js';
import type { Target, Topology } from '../model/types.js';
import { BASELINE_MAX_FAILED_SHARE, failedShare, RUN_FLAG_TEXT, type RunRecord } from '../results/types.js';

type MechanismEvent = Extract<RunEvent, { type: 'mechanism' }>['event'];

/** one probe point: the outage probe's samples of 100 ms */
export const BUCKET_MS = 100;
/** what a strip chart shows: the last minute of its address */
export const WINDOW_MS = 60_000;
const MAX_MARKERS = 40;
const MAX_FEED = 40;
const MAX_ROWS = 2000;
const MAX_ROUTES = 256;
/**
 * Successes in a row that end an outage for the LIVE converge marker. The run's own figure
 * (`recoverSuccesses` of the lab's traffic profile, 5 in the shipped labs) is not in the event
 * stream; the record at drill-end carries the measured convergeMs, which then replaces this
 * estimate.
 */
const CONVERGE_OK = 5;
/**
 * A probe sent this long before the injection may fail because of it (it was in flight): the
 * default tolerance of computeOutage in src/traffic/outage.ts (two 10 ms probe periods).
 */
const IN_FLIGHT_MS = 20;
/** successes kept for that (the earliest ones matter; a bound for a run that never fails again) */
const OK_KEPT = 50;
/**
 * Components that are not the failover mechanism (the same list the report's phase breakdown
 * uses in src/orchestrator/analysis.ts): their events on a survivor do not mean "detected".
 */
const NOT_MECHANISM = new Set(['wire', 'router', 'agent', 'traffic', 'kubelet-client', 'echo', 'apiserver', 'kubeprism']);

export type RunStatus = 'waiting' | 'running' | 'ok' | 'failed' | 'interrupted';
export type MarkerKind = 'inject' | 'detect' | 'announce' | 'converge' | 'restore';
export type AddressMode = 'l2' | 'bgp' | 'lb';

export interface TopologyView {
  name: string;
  segments: { name: string; kind: 'lan' | 'fabric' | 'uplink'; cidr: string }[];
  /** one per LAN segment, in the topology's order: its nodes (control planes first) and routers */
  racks: { segment: string; cidr: string; nodes: { name: string; role: 'controlplane' | 'worker'; ip: string; runsWorkloads: boolean }[]; routers: string[] }[];
  routers: { name: string; role: 'edge' | 'tor' | 'single'; asn: number; bgp: boolean; ip: string; segments: string[]; nodeSegments: string[]; peers: string[] }[];
  clients: { name: string; ip: string; segments: string[] }[];
  lb: { name: string; ip: string; segment: string } | null;
  /** every interface: host → segment */
  links: { host: string; segment: string; ip: string }[];
  vip: string;
  pool: string;
  services: { name: string; ip: string; etp: 'Cluster' | 'Local' }[];
  hostByIp: Record<string, string>;
}

export interface AddressView {
  /** 'api' or 'svc:<service name>' (also the strip chart's key) */
  key: string;
  label: string;
  target: Target;
  service?: string;
  ip: string;
  /** how the address is carried, as far as the events showed: ARP, BGP, or a load-balancer box */
  mode: AddressMode | null;
  holders: string[];
  /** t of the last change of holders */
  since: number | null;
  /** per router: the next hops it forwards the address to (BGP: ECMP over the announcers) */
  nexthops: { router: string; via: string[] }[];
}

export interface Bucket {
  /** bucket start, epoch ms (multiple of BUCKET_MS) */
  t: number;
  ok: number;
  fail: number;
  /** slowest successful probe of the bucket (≈ its p99 with ~10 probes), null = none succeeded */
  latMax: number | null;
}

export interface Marker {
  t: number;
  kind: MarkerKind;
  label: string;
  /** startedAt of the drill it belongs to (a later drill's markers never replace it) */
  run: number;
}

export interface Strip {
  key: string;
  label: string;
  target: Target;
  service?: string;
  buckets: Bucket[];
  markers: Marker[];
}

export interface CurrentDrill {
  strategy: string;
  target: Target;
  service?: string;
  key: string;
  drill: string;
  repeat: number;
  victim: string | null;
  address: string;
  band: { min: number; max: number; basis: string } | null;
  phase: 'pre' | 'injected' | 'restored' | 'done';
  startedAt: number;
  injectAt: number | null;
  restoreAt: number | null;
  detectAt: number | null;
  announceAt: number | null;
  convergeAt: number | null;
  /**
   * live converge tracking, by the samples' send times (a failed probe completes up to its
   * timeout later than a success sent after it, so batches are not in send order): the newest
   * failure since the injection and the send times of the successes after it
   */
  lastFailAt: number | null;
  okAfter: number[];
  /** send time of the first failed probe of the outage (null = none failed yet) */
  firstFailAt: number | null;
  /** set at drill-end */
  outageMs?: number | null;
  withinBand?: boolean | null;
  /** set at drill-end: false = the outage had not ended when observation stopped (outageMs a lower bound) */
  recovered?: boolean;
}

export interface ResultRow {
  t: number;
  strategy: string;
  target: Target;
  service?: string;
  drill: string;
  victim: string | null;
  repeat: number;
  outageMs: number | null;
  band: { min: number; max: number } | null;
  withinBand: boolean | null;
  /** false: the outage had not ended when observation stopped — outageMs is a lower bound, never a figure */
  recovered: boolean;
  /** what the report says beside the verdict: host load, a fault injected on a failing path, what the drill left stuck */
  flags: string[];
  /** a baseline's verdict: the share of what the client sent that failed, clean when at most the report's 1 % */
  baseline?: { clean: boolean; failedPct: number };
  errors: number;
  resets: number;
  p99Ms: number | null;
  supported: boolean;
  reason?: string;
}

export interface FeedItem {
  t: number;
  kind: 'mechanism' | 'wire' | 'router' | 'strategy' | 'drill' | 'bgp' | 'log';
  host?: string;
  text: string;
}

export interface LiveState {
  status: RunStatus;
  error?: string;
  lab: string | null;
  provider: string | null;
  /** the control plane is emulated (sim): the page must say so */
  emulated: boolean;
  instances: string[];
  out: string | null;
  startedAt: number | null;
  endedAt: number | null;
  /** t of the newest event seen */
  lastT: number | null;
  topology: TopologyView | null;
  strategies: { id: string; label: string; recommended: boolean; phase: 'pending' | 'apply' | 'ready' | 'unapply' | 'unsupported'; reason?: string }[];
  strategy: string | null;
  current: CurrentDrill | null;
  addresses: AddressView[];
  /** BGP sessions per router, as last observed */
  bgp: Record<string, { peer: string; host: string | null; state: string }[]>;
  /** /32 routes per router from its route monitor: present or withdrawn */
  routes: Record<string, Record<string, { present: boolean; t: number }>>;
  strips: Strip[];
  progress: { done: number; total: number; leftMs: number; t: number } | null;
  results: ResultRow[];
  /** rows dropped from the front once MAX_ROWS was reached */
  resultsDropped: number;
  report: { files: string[]; html: string | null; t: number } | null;
  feed: FeedItem[];
}

export function initialState(): LiveState {
  return {
    status: 'waiting',
    lab: null,
    provider: null,
    emulated: false,
    instances: [],
    out: null,
    startedAt: null,
    endedAt: null,
    lastT: null,
    topology: null,
    strategies: [],
    strategy: null,
    current: null,
    addresses: [],
    bgp: {},
    routes: {},
    strips: [],
    progress: null,
    results: [],
    resultsDropped: 0,
    report: null,
    feed: [],
  };
}

// ---------------------------------------------------------------------------------------------

export function reduce(state: LiveState, e: RunEvent): LiveState {
  const s: LiveState = { ...state, lastT: Math.max(state.lastT ?? 0, e.t) };
  switch (e.type) {
    case 'run-start':
      return runStart(e);
    case 'strategy':
      return strategyPhase(s, e);
    case 'drill-start':
      return drillStart(s, e);
    case 'inject':
    case 'restore':
      return injectOrRestore(s, e);
    case 'probe':
      return probe(s, e);
    case 'holders':
      return holders(s, e);
    case 'bgp':
      return bgpSessions(s, e);
    case 'mechanism':
      return mechanism(s, e.event);
    case 'drill-end':
      return drillEnd(s, e);
    case 'progress':
      return { ...s, progress: { done: e.done, total: e.total, leftMs: e.leftMs, t: e.t } };
    case 'log':
      return { ...s, feed: pushFeed(s.feed, { t: e.t, kind: 'log', text: e.message.length > 200 ? `${e.message.slice(0, 199)}…` : e.message }) };
    case 'report': {
      const html = e.files.find((f) => /(^|[\\/])report\.html$/.test(f)) ?? null;
      return { ...s, report: { files: [...e.files], html, t: e.t } };
    }
    case 'run-end':
      return {
        ...s,
        status: e.status,
        ...(e.error ? { error: e.error } : {}),
        endedAt: e.t,
        current: s.current ? { ...s.current, phase: 'done' } : null,
        progress: s.progress ? { ...s.progress, leftMs: 0, t: e.t } : null,
      };
    default:
      return s;
  }
}

/** Reduce a whole list (a replay, a test fixture). */
export function reduceAll(events: Iterable<RunEvent>, from: LiveState = initialState()): LiveState {
  let s = from;
  for (const e of events) s = reduce(s, e);
  return s;
}

/** The strip chart / address key of a target. */
export function keyOf(target: Target, service?: string): string {
  return target === 'api' ? 'api' : `svc:${service ?? ''}`;
}

// ---------------------------------------------------------------------------------------------
// run and strategy

function runStart(e: Extract<RunEvent, { type: 'run-start' }>): LiveState {
  const topology = topologyView(e.topology);
  const s = initialState();
  return {
    ...s,
    status: 'running',
    lab: e.lab,
    provider: e.provider,
    emulated: e.emulated,
    instances: [...e.instances],
    out: e.out,
    startedAt: e.t,
    lastT: e.t,
    topology,
    strategies: e.strategies.map((x) => ({ id: x.id, label: x.label, recommended: x.recommended, phase: 'pending' as const })),
    addresses: freshAddresses(topology),
    strips: [
      { key: 'api', label: 'API endpoint', target: 'api' as const, buckets: [], markers: [] },
      ...topology.services.map((v) => ({ key: keyOf('service', v.name), label: `Service ${v.name}`, target: 'service' as const, service: v.name, buckets: [], markers: [] })),
    ],
    progress: { done: 0, total: e.plan.length, leftMs: e.estimateMs, t: e.t },
    feed: pushFeed([], { t: e.t, kind: 'strategy', text: `run ${e.lab} on ${e.provider}${e.emulated ? ' (emulated control plane)' : ''}: ${e.plan.length} runs planned` }),
  };
}

export function topologyView(t: Topology): TopologyView {
  const hostByIp: Record<string, string> = {};
  const links: TopologyView['links'] = [];
  const hosts = [...t.nodes, ...t.routers, ...t.clients, ...(t.loadBalancer ? [t.loadBalancer] : [])];
  for (const h of hosts) {
    for (const i of h.interfaces) {
      hostByIp[i.ip] = h.name;
      links.push({ host: h.name, segment: i.segment, ip: i.ip });
    }
  }
  const segsOf = (h: { interfaces: { segment: string }[] }) => h.interfaces.map((i) => i.segment);
  return {
    name: t.name,
    segments: t.segments.map((g) => ({ name: g.name, kind: g.kind, cidr: g.cidr })),
    racks: t.segments
      .filter((g) => g.kind === 'lan')
      .map((g) => ({
        segment: g.name,
        cidr: g.cidr,
        nodes: t.nodes
          .filter((n) => n.rack === g.name)
          .sort((a, b) => (a.role === b.role ? a.index - b.index : a.role === 'controlplane' ? -1 : 1))
          .map((n) => ({ name: n.name, role: n.role, ip: n.ip, runsWorkloads: n.runsWorkloads })),
        routers: t.routers.filter((r) => r.interfaces.some((i) => i.segment === g.name)).map((r) => r.name),
      })),
    routers: t.routers.map((r) => ({
      name: r.name,
      role: r.role,
      asn: r.asn,
      bgp: r.bgp !== false,
      ip: r.interfaces[0]?.ip ?? '',
      segments: segsOf(r),
      nodeSegments: [...r.nodeSegments],
      peers: r.peers.map((p) => p.router),
    })),
    clients: t.clients.map((c) => ({ name: c.name, ip: c.interfaces[0]?.ip ?? '', segments: segsOf(c) })),
    lb: t.loadBalancer ? { name: t.loadBalancer.name, ip: t.loadBalancer.ip, segment: t.loadBalancer.interfaces[0]?.segment ?? '' } : null,
    links,
    vip: t.vip,
    pool: t.pool.cidr,
    services: t.services.map((v) => ({ name: v.name, ip: v.ip, etp: v.externalTrafficPolicy })),
    hostByIp,
  };
}

function freshAddresses(t: TopologyView): AddressView[] {
  return [
    { key: 'api', label: 'API', target: 'api', ip: t.vip, mode: null, holders: [], since: null, nexthops: [] },
    ...t.services.map((v) => ({ key: keyOf('service', v.name), label: v.name, target: 'service' as const, service: v.name, ip: v.ip, mode: null, holders: [], since: null, nexthops: [] })),
  ];
}

function strategyPhase(s: LiveState, e: Extract<RunEvent, { type: 'strategy' }>): LiveState {
  const strategies = s.strategies.some((x) => x.id === e.strategy)
    ? s.strategies.map((x) => (x.id === e.strategy ? { ...x, phase: e.phase, ...(e.reason ? { reason: e.reason } : {}) } : x))
    : [...s.strategies, { id: e.strategy, label: e.strategy, recommended: false, phase: e.phase, ...(e.reason ? { reason: e.reason } : {}) }];
  const text = e.phase === 'unsupported' ? `${e.strategy}: unsupported — ${e.reason ?? ''}` : `${e.strategy}: ${e.phase}`;
  const next: LiveState = { ...s, strategies, feed: pushFeed(s.feed, { t: e.t, kind: 'strategy', text }) };
  if (e.watched !== false && (e.phase === 'apply' || e.phase === 'unapply')) {
    // a strategy's agents start (or stop): nobody holds an address until events say so
    next.addresses = s.topology ? freshAddresses(s.topology) : [];
    next.routes = {};
    if (e.phase === 'apply') next.strategy = e.strategy;
    if (e.phase === 'unapply') next.current = s.current ? { ...s.current, phase: 'done' } : null;
  }
  return next;
}

// ---------------------------------------------------------------------------------------------
// drills

function drillStart(s: LiveState, e: Extract<RunEvent, { type: 'drill-start' }>): LiveState {
  const service = e.target === 'service' ? (e.service ?? s.topology?.services.find((v) => v.ip === e.address)?.name ?? s.topology?.services[0]?.name) : undefined;
  const key = keyOf(e.target, service);
  const current: CurrentDrill = {
    strategy: e.strategy,
    target: e.target,
    ...(service ? { service } : {}),
    key,
    drill: e.drill,
    repeat: e.repeat,
    victim: e.victim,
    address: e.address,
    band: e.band ? { ...e.band } : null,
    phase: 'pre',
    startedAt: e.t,
    injectAt: null,
    restoreAt: null,
    detectAt: null,
    announceAt: null,
    convergeAt: null,
    lastFailAt: null,
    okAfter: [],
    firstFailAt: null,
  };
  const lb = s.topology?.lb;
  const addresses = s.addresses.map((a) => {
    if (a.key !== key || a.ip === e.address) return a;
    // the API address is the VIP or the load balancer's, depending on the strategy
    const isLb = lb !== null && lb !== undefined && lb.ip === e.address;
    return withHolders({ ...a, ip: e.address, mode: isLb ? 'lb' : a.mode }, isLb ? [lb.name] : [], e.t, s);
  });
  const who = e.victim ? ` on ${e.victim}` : '';
  return {
    ...s,
    strategy: e.strategy,
    current,
    addresses,
    feed: pushFeed(s.feed, { t: e.t, kind: 'drill', text: `${e.drill}${who}: ${labelOf(e.target, service)} ${e.address}, repeat ${e.repeat + 1}` }),
  };
}

function injectOrRestore(s: LiveState, e: Extract<RunEvent, { type: 'inject' | 'restore' }>): LiveState {
  const c = s.current;
  const feed = pushFeed(s.feed, { t: e.t, kind: 'drill', text: `${e.type} ${e.drill}${e.victim ? ` on ${e.victim}` : ''}` });
  if (!c || c.strategy !== e.strategy || c.target !== e.target) return { ...s, feed };
  const label = e.type === 'inject' ? `${e.drill}${e.victim ? ` ${e.victim}` : ''}` : 'restore';
  const strips = withMarker(s.strips, c.key, { t: e.t, kind: e.type, label, run: c.startedAt });
  // a crashed machine holds no address (it is off; the sim resets what a reboot forgets), and it
  // says goodbye to nobody: no `released` event will come
  const addresses =
    e.type === 'inject' && e.drill === 'crash' && e.victim
      ? s.addresses.map((a) => (a.holders.includes(e.victim!) ? withHolders(a, a.holders.filter((h) => h !== e.victim), e.t, s) : a))
      : s.addresses;
  const current: CurrentDrill =
    e.type === 'inject'
      ? { ...c, phase: 'injected', injectAt: e.t, detectAt: null, announceAt: null, convergeAt: null, lastFailAt: null, okAfter: [], firstFailAt: null }
      : { ...c, phase: 'restored', restoreAt: e.t };
  return { ...s, current, strips, addresses, feed };
}

function drillEnd(s: LiveState, e: Extract<RunEvent, { type: 'drill-end' }>): LiveState {
  const r = e.record;
  const row = resultRow(r, e.t);
  let results = [...s.results, row];
  let dropped = s.resultsDropped;
  if (results.length > MAX_ROWS) {
    dropped += results.length - MAX_ROWS;
    results = results.slice(results.length - MAX_ROWS);
  }
  let { current, strips } = s;
  if (current && current.strategy === e.strategy && current.target === e.target && current.drill === e.drill) {
    current = { ...current, phase: 'done', outageMs: r.outageMs, withinBand: r.withinBand ?? null, recovered: r.recovered !== false };
    // the record's phases are the measured ones (the same as the report's): they replace the
    // live estimates
    const at = current.injectAt;
    if (at !== null && r.phases) {
      const fix: [MarkerKind, number | null | undefined][] = [
        ['detect', r.phases.detectMs],
        ['announce', r.phases.announceMs],
        ['converge', r.phases.convergeMs],
      ];
      for (const [kind, ms] of fix) {
        if (ms === null || ms === undefined) continue;
        strips = withMarker(strips, current.key, { t: at + ms, kind, label: kind, run: current.startedAt });
        current = { ...current, [`${kind}At`]: at + ms };
      }
    }
  }
  const band = r.expectedOutageMs ? ` (band ${fmtS(r.expectedOutageMs.min)}–${fmtS(r.expectedOutageMs.max)})` : '';
  const text = r.supported === false ? `${r.strategy} ${r.drill}: unsupported` : `${r.strategy} ${labelOf(r.target, r.service)} ${r.drill}: outage ${r.outageMs === null ? '–' : r.recovered === false ? `> ${fmtS(r.outageMs)} (not recovered)` : fmtS(r.outageMs)}${band}`;
  return { ...s, current, strips, results, resultsDropped: dropped, feed: pushFeed(s.feed, { t: e.t, kind: 'drill', text }) };
}

/** the flags the reports put beside a run's verdict, in their words (RUN_FLAG_TEXT) */
function runFlags(r: RunRecord): string[] {
  return [
    ...(r.withinBand === false && r.outsideReason === 'host-load' ? [RUN_FLAG_TEXT.hostLoad] : []),
    ...(r.cleanBeforeFault === false ? [RUN_FLAG_TEXT.uncleanBefore] : []),
    ...(r.healOutage?.recovered === false ? [RUN_FLAG_TEXT.healOpen] : []),
    ...(r.leftStuck ?? []).map((u) => `left stuck (restarted before the next drill): ${u}`),
  ];
}

function baselineVerdict(r: RunRecord): ResultRow['baseline'] {
  if (r.drill !== 'baseline' || r.supported === false) return undefined;
  const share = failedShare(r);
  if (share === null) return undefined;
  return { clean: share <= BASELINE_MAX_FAILED_SHARE, failedPct: Math.round(share * 1000) / 10 };
}

function resultRow(r: RunRecord, t: number): ResultRow {
  const baseline = baselineVerdict(r);
  return {
    t,
    strategy: r.strategy,
    target: r.target,
    ...(r.service ? { service: r.service } : {}),
    drill: r.drill,
    victim: r.victim ?? null,
    repeat: r.repeat ?? 0,
    outageMs: r.outageMs,
    band: r.expectedOutageMs ? { min: r.expectedOutageMs.min, max: r.expectedOutageMs.max } : null,
    withinBand: r.withinBand ?? null,
    recovered: r.recovered !== false,
    flags: runFlags(r),
    ...(baseline ? { baseline } : {}),
    errors: r.errors,
    resets: r.resets ?? 0,
    p99Ms: r.supported === false ? null : (r.latencyMs?.p99 ?? null),
    supported: r.supported !== false,
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// probes → strip charts

function probe(s: LiveState, e: Extract<RunEvent, { type: 'probe' }>): LiveState {
  const c = s.current;
  const own = c !== null && c.strategy === e.strategy && c.target === e.target;
  const key = own ? c.key : e.target === 'api' ? 'api' : (s.strips.find((x) => x.target === 'service')?.key ?? 'svc:');
  let strips = s.strips.some((x) => x.key === key) ? s.strips : [...s.strips, { key, label: key, target: e.target, buckets: [], markers: [] }];
  strips = strips.map((x) => (x.key === key ? addSamples(x, e.samples) : x));

  if (!own || c.phase === 'pre' || c.injectAt === null) return { ...s, strips };
  // live converge (as the client-seen outage ends): the first success after the newest failure,
  // once CONVERGE_OK successes followed it
  let lastFailAt = c.lastFailAt;
  let okAfter = c.okAfter;
  let firstFailAt = c.firstFailAt;
  for (const p of e.samples) {
    if (p.t < c.injectAt - IN_FLIGHT_MS) continue;
    if (!p.ok && (firstFailAt === null || p.t < firstFailAt)) firstFailAt = p.t;
    if (!p.ok && (lastFailAt === null || p.t > lastFailAt)) {
      lastFailAt = p.t;
      okAfter = okAfter.filter((t) => t > p.t);
    } else if (p.ok && lastFailAt !== null && p.t > lastFailAt) {
      okAfter = insertSorted(okAfter, p.t, OK_KEPT);
    }
  }
  const convergeAt = lastFailAt !== null && okAfter.length >= CONVERGE_OK ? okAfter[0]! : null;
  if (convergeAt !== c.convergeAt) {
    strips =
      convergeAt === null
        ? withoutMarker(strips, c.key, 'converge', c.startedAt) // it failed again: not converged
        : withMarker(strips, c.key, { t: convergeAt, kind: 'converge', label: 'converge', run: c.startedAt });
  }
  return { ...s, strips, current: { ...c, lastFailAt, okAfter, convergeAt, firstFailAt } };
}

/** the `max` smallest values, sorted */
function insertSorted(xs: number[], x: number, max: number): number[] {
  if (xs.length >= max && x >= xs[xs.length - 1]!) return xs;
  const out = xs.slice();
  let i = out.length;
  while (i > 0 && out[i - 1]! > x) i--;
  out.splice(i, 0, x);
  if (out.length > max) out.pop();
  return out;
}

function addSamples(strip: Strip, samples: { t: number; ok: boolean; latencyMs: number }[]): Strip {
  if (!samples.length) return strip;
  const buckets = strip.buckets.slice();
  for (const p of samples) {
    const k = Math.floor(p.t / BUCKET_MS) * BUCKET_MS;
    let i = buckets.length - 1;
    while (i >= 0 && buckets[i]!.t > k) i--;
    if (i >= 0 && buckets[i]!.t === k) {
      const b = buckets[i]!;
      buckets[i] = p.ok ? { ...b, ok: b.ok + 1, latMax: Math.max(b.latMax ?? 0, p.latencyMs) } : { ...b, fail: b.fail + 1 };
    } else {
      const last = buckets[buckets.length - 1];
      if (last && k < last.t - WINDOW_MS) continue; // older than the window: nothing to show
      buckets.splice(i + 1, 0, { t: k, ok: p.ok ? 1 : 0, fail: p.ok ? 0 : 1, latMax: p.ok ? p.latencyMs : null });
    }
  }
  const end = buckets[buckets.length - 1]!.t;
  let drop = 0;
  while (drop < buckets.length && buckets[drop]!.t <= end - WINDOW_MS) drop++;
  const kept = drop ? buckets.slice(drop) : buckets;
  const from = kept[0]!.t;
  const markers = strip.markers.some((m) => m.t < from - BUCKET_MS) ? strip.markers.filter((m) => m.t >= from - BUCKET_MS) : strip.markers;
  return { ...strip, buckets: kept, markers };
}

function withMarker(strips: Strip[], key: string, m: Marker): Strip[] {
  return strips.map((x) => {
    if (x.key !== key) return x;
    const markers = x.markers.filter((o) => !(o.run === m.run && o.kind === m.kind && m.kind !== 'inject' && m.kind !== 'restore'));
    markers.push(m);
    markers.sort((a, b) => a.t - b.t);
    return { ...x, markers: markers.length > MAX_MARKERS ? markers.slice(markers.length - MAX_MARKERS) : markers };
  });
}

function withoutMarker(strips: Strip[], key: string, kind: MarkerKind, run: number): Strip[] {
  return strips.map((x) => (x.key === key ? { ...x, markers: x.markers.filter((m) => !(m.kind === kind && m.run === run)) } : x));
}

// ---------------------------------------------------------------------------------------------
// who holds what

function holders(s: LiveState, e: Extract<RunEvent, { type: 'holders' }>): LiveState {
  const key = addressKey(s, e.target, e.address);
  const lb = s.topology?.lb;
  const isLb = lb !== null && lb !== undefined && lb.ip === e.address;
  const addresses = s.addresses.map((a) => {
    if (a.key !== key) return a;
    const names = isLb && !e.holders.length ? [lb.name] : e.holders;
    return withHolders({ ...a, ip: e.address, mode: isLb ? 'lb' : a.mode }, names, e.t, s);
  });
  return { ...s, addresses };
}

function addressKey(s: LiveState, target: Target, ip: string): string | null {
  const byIp = s.addresses.find((a) => a.ip === ip && a.target === target);
  if (byIp) return byIp.key;
  if (target === 'api') return 'api';
  const c = s.current;
  return c && c.target === 'service' ? c.key : (s.addresses.find((a) => a.target === 'service')?.key ?? null);
}

function withHolders(a: AddressView, names: string[], t: number, s: LiveState): AddressView {
  const sorted = [...new Set(names)].sort(byName);
  const changed = sorted.join(',') !== a.holders.join(',');
  const next = { ...a, holders: sorted, since: changed ? t : a.since };
  return { ...next, nexthops: nexthopsOf(next, s) };
}

/**
 * Where each BGP router sends the address: a rack router (ToR, or the single router of a flat
 * lab) over the announcing nodes on its own segments (its ECMP group); a router that only peers
 * with routers over those peers that have a path. A route the router's monitor saw withdrawn
 * leaves it without next hops whatever the announcers say.
 */
function nexthopsOf(a: AddressView, s: LiveState): AddressView['nexthops'] {
  const t = s.topology;
  if (!t || a.mode !== 'bgp') return [];
  const rackOf = new Map(t.racks.flatMap((r) => r.nodes.map((n) => [n.name, r.segment] as const)));
  const out = new Map<string, string[]>();
  const withdrawn = (router: string) => s.routes[router]?.[a.ip]?.present === false;
  for (const r of t.routers.filter((x) => x.bgp && x.nodeSegments.length)) {
    out.set(r.name, withdrawn(r.name) ? [] : a.holders.filter((h) => r.nodeSegments.includes(rackOf.get(h) ?? '')));
  }
  for (const r of t.routers.filter((x) => x.bgp && !x.nodeSegments.length)) {
    out.set(r.name, withdrawn(r.name) ? [] : r.peers.filter((p) => (out.get(p)?.length ?? 0) > 0));
  }
  return [...out].map(([router, via]) => ({ router, via }));
}

function bgpSessions(s: LiveState, e: Extract<RunEvent, { type: 'bgp' }>): LiveState {
  const byIp = s.topology?.hostByIp ?? {};
  const peers = e.peers.map((p) => ({ peer: p.peer, host: byIp[p.peer] ?? (s.topology && isHost(s.topology, p.peer) ? p.peer : null), state: p.state })).sort((a, b) => byName(a.host ?? a.peer, b.host ?? b.peer));
  const prev = s.bgp[e.router] ?? [];
  const prevState = new Map(prev.map((p) => [p.peer, p.state]));
  let feed = s.feed;
  for (const p of peers) {
    const was = prevState.get(p.peer);
    if (was !== undefined && was !== p.state) feed = pushFeed(feed, { t: e.t, kind: 'bgp', host: e.router, text: `${e.router} ↔ ${p.host ?? p.peer}: ${was} → ${p.state}` });
  }
  return { ...s, bgp: { ...s.bgp, [e.router]: peers }, feed };
}

function isHost(t: TopologyView, name: string): boolean {
  return t.links.some((l) => l.host === name);
}

function mechanism(s: LiveState, ev: MechanismEvent): LiveState {
  let next: LiveState = { ...s, feed: pushFeed(s.feed, feedOf(ev)) };
  const ips = ipsOf(ev);

  // holders from the agents' own events (the observed `holders` events correct them)
  const add = ev.type === 'acquired' || ev.type === 'bgp-announce' || ev.type === 'announce';
  const remove = ev.type === 'released' || ev.type === 'bgp-withdraw' || ev.type === 'withdraw';
  if ((add || remove) && ips.length && !NOT_MECHANISM.has(ev.component)) {
    const bgp = ev.type !== 'acquired' && ev.type !== 'released';
    next.addresses = next.addresses.map((a) => {
      if (!ips.includes(a.ip)) return a;
      const names = add ? [...a.holders, ev.host] : a.holders.filter((h) => h !== ev.host);
      return withHolders({ ...a, mode: a.mode === 'lb' ? 'lb' : bgp ? 'bgp' : 'l2' }, names, ev.t, next);
    });
  }
  if (ev.component === 'router' && ev.type === 'route' && typeof ev.prefix === 'string') {
    const ip = ev.prefix.split('/')[0]!;
    const table = { ...(s.routes[ev.host] ?? {}), [ip]: { present: ev.deleted !== true, t: ev.t } };
    const keys = Object.keys(table);
    if (keys.length > MAX_ROUTES) delete table[keys[0]!];
    next.routes = { ...s.routes, [ev.host]: table };
    next.addresses = next.addresses.map((a) => (a.ip === ip ? { ...a, mode: a.mode ?? 'bgp', nexthops: nexthopsOf({ ...a, mode: a.mode ?? 'bgp' }, next) } : a));
  }

  // phase markers of the current drill, by the events' own time (they may arrive late)
  const c = next.current;
  if (c && c.injectAt !== null && ev.t >= c.injectAt && c.phase !== 'done') {
    if (!NOT_MECHANISM.has(ev.component) && ev.host !== c.victim && (c.detectAt === null || ev.t < c.detectAt)) {
      next = { ...next, current: { ...c, detectAt: ev.t }, strips: withMarker(next.strips, c.key, { t: ev.t, kind: 'detect', label: 'detect', run: c.startedAt }) };
    }
    const c2 = next.current!;
    const forAddress =
      (ev.component === 'wire' && ev.type === 'garp' && ev.ip === c2.address) ||
      (ev.component === 'router' && ev.type === 'route' && typeof ev.prefix === 'string' && ev.prefix.split('/')[0] === c2.address);
    if (forAddress && (c2.announceAt === null || ev.t < c2.announceAt)) {
      next = { ...next, current: { ...c2, announceAt: ev.t }, strips: withMarker(next.strips, c2.key, { t: ev.t, kind: 'announce', label: 'announce', run: c2.startedAt }) };
    }
  }
  return next;
}

function ipsOf(ev: MechanismEvent): string[] {
  const out: string[] = [];
  if (typeof ev.ip === 'string') out.push(ev.ip);
  if (Array.isArray(ev.prefixes)) for (const p of ev.prefixes) if (typeof p === 'string') out.push(p.split('/')[0]!);
  return out;
}

function feedOf(ev: MechanismEvent): FeedItem {
  const what = [
    typeof ev.ip === 'string' ? ev.ip : null,
    Array.isArray(ev.prefixes) ? ev.prefixes.join(' ') : null,
    typeof ev.prefix === 'string' ? `${ev.prefix}${ev.deleted === true ? ' deleted' : ''}` : null,
    typeof ev.node === 'string' ? ev.node : null,
    typeof ev.identity === 'string' ? `→ ${ev.identity}` : null,
    typeof ev.reason === 'string' ? `(${ev.reason})` : null,
  ]
    .filter(Boolean)
    .join(' ');
  const kind = ev.component === 'wire' ? 'wire' : ev.component === 'router' ? 'router' : 'mechanism';
  const who = ev.component === 'wire' ? `wire${typeof ev.segment === 'string' ? ` ${ev.segment}` : ''}` : `${ev.host} ${ev.component}`;
  return { t: ev.t, kind, host: ev.host, text: `${who}: ${ev.type}${what ? ` ${what}` : ''}` };
}

// ---------------------------------------------------------------------------------------------

function pushFeed(feed: FeedItem[], item: FeedItem): FeedItem[] {
  const next = feed.length >= MAX_FEED ? feed.slice(feed.length - MAX_FEED + 1) : feed.slice();
  next.push(item);
  return next;
}

function labelOf(target: Target, service?: string): string {
  return target === 'api' ? 'API' : `Service ${service ?? ''}`.trim();
}

function fmtS(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** cp2 before cp10: names compared with their numbers as numbers */
function byName(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
