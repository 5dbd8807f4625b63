/**
 * What a run will do, known before it starts: every strategy × target × drill × repeat with its
 * expected band and how long it should take, the hold of held faults, the lanes strategies run
 * in when instances run in parallel, and the estimated duration and its floor. Pure: the lab in,
 * the plan out — the same figures the progress display counts down and the benchmark compares
 * with the measured durations.
 */
import type { DrillKind, DrillSpec, Lab, LbService, Target } from '../model/types.js';
import type { Band, Strategy } from '../strategies/types.js';
import type { PlannedRun } from './events.js';
import { composeStrategy, blockingConflicts } from '../strategies/compose.js';
import { drill as drillFor } from '../drills/index.js';
import { withEndpointTail } from '../emulation/endpoints.js';

/** after a fault ends, the probe must stay clean this long before the observation stops */
export const STABLE_MS = 1000;
/** a held fault is held until the slowest strategy could have failed over, plus this margin */
export const HOLD_MARGIN_MS = 5000;
/** a node with no peer to take over comes back after this long (crash on a single node) */
export const DEFAULT_DOWNTIME_MS = 10_000;
/**
 * How long an emulated node takes from "powered on" to serving again (etcd, FRR, agent with its
 * components started): measured here at 3–6 s on the 2-core machine, bounded at 15 s. Real Talos
 * boots in one to two minutes; the report says so for runs that include a boot.
 */
export const EMULATED_BOOT_MS = 15_000;
/** samples a baseline window needs: the p99 of ~1,000 requests rests on ~10 of them */
export const BASELINE_SAMPLES = 1000;
/**
 * The fixed cost of one measured run besides its windows: the kernel state flushed and the agents'
 * heaps collected before it (every node), traffic start and stop, the event reads and the victim
 * choice. Measured on the 2-core machine from the end of one run to the end of the next, windows
 * taken away: 0.7 s on smb (5 nodes), 4.1 s on enterprise (35 nodes).
 */
export const RUN_OVERHEAD_MS = 150;
export const RUN_OVERHEAD_PER_NODE_MS = 115;
/**
 * A shutdown or crash that is not held is restored after the traffic stops: the victim boots
 * again (etcd, FRR, its agent and components) before the next drill. Measured on the 2-core
 * machine with the bundled agents: 2.3–3 s on smb and enterprise. (Before the agents were bundled
 * each compiled its TypeScript at start and this took 3–6 s.)
 */
export const RESTORE_BOOT_MS = 3000;

export function targetsOf(spec: DrillSpec): Target[] {
  return spec.target === 'both' ? ['api', 'service'] : [spec.target];
}

/** the Services a drill runs against: baseline compares every Service (ETP Cluster vs Local), other drills the first */
export function servicesOf(lab: Lab, kind: DrillKind, target: Target): (LbService | undefined)[] {
  return target === 'service' ? (kind === 'baseline' ? lab.topology.services : [lab.topology.services[0]!]) : [undefined];
}

/** The band the mechanism's timers predict for a drill (null = nothing to predict), before hold and endpoint effects. */
export function mechanismBand(lab: Lab, s: Strategy, kind: DrillKind, target: Target): Band | null {
  if (kind === 'baseline' || kind === 'class-conflict') return null;
  const role = target === 'api' ? s.cp : s.svc;
  return role.expectedOutage(kind, { topology: lab.topology, strategy: s.ref, roles: { cp: s.cp, svc: s.svc } });
}

/**
 * How long a held fault (freeze, partition, the VIP loss) is held: as the lab says when it says
 * so (a blip is its own drill variant with its own hold), else until the slowest strategy of the
 * run could have failed over — the largest band maximum among the lab's strategies, plus a margin
 * — so a slow mechanism is never made to look fast by a fault that ended before its timers did.
 */
export function holdFor(lab: Lab, spec: DrillSpec, target: Target, strategies: Strategy[]): number {
  if (spec.holdMs > 0) return spec.holdMs;
  const maxima = strategies.map((s) => mechanismBand(lab, s, spec.kind, target)?.max ?? 0);
  // whole milliseconds, rounded up: a band built from fractional terms still ends inside the hold
  return Math.ceil(Math.max(...maxima, 0) + HOLD_MARGIN_MS);
}

/**
 * The band of a held fault given its hold H: a fault that ends before the mechanism fails over is
 * an outage of about H (the victim comes back still holding the address); one held past the band
 * is the failover itself; in between, either.
 */
export function heldBand(band: Band | null, holdMs: number): Band | null {
  if (!band) return null;
  if (holdMs >= band.max) return band;
  const s = (ms: number) => `${Math.round(ms) / 1000} s`;
  if (holdMs < band.min) {
    return { min: holdMs, max: holdMs + STABLE_MS + 1000, basis: `the fault is held ${s(holdMs)}, less than the failover (${band.basis}) needs at least (${s(band.min)}): the victim comes back still holding the address` };
  }
  return { min: Math.min(band.min, holdMs), max: Math.max(band.max, holdMs + STABLE_MS + 1000), basis: `the fault is held ${s(holdMs)}, inside the failover band (${band.basis}): either the others take over or the victim comes back first` };
}

/**
 * A crash with nobody to take over (one control plane, one announcer): the node comes back after
 * its downtime, and the outage is the downtime plus its boot.
 */
export function downtimeBand(downtimeMs: number, rejoin?: { ms: number; basis: string } | null): Band {
  const s = (ms: number) => `${Math.round(ms) / 1000} s`;
  const extra = rejoin && rejoin.ms > 0 ? rejoin : null;
  return {
    min: downtimeMs,
    max: downtimeMs + EMULATED_BOOT_MS + (extra?.ms ?? 0),
    basis:
      `no peer can take over: the node is down ${s(downtimeMs)} and serves again after its boot (≤ ${s(EMULATED_BOOT_MS)} emulated)` +
      (extra ? `, then ≤ ${s(extra.ms)} until the mechanism serves again (${extra.basis})` : ''),
  };
}

export interface RunPlan extends Omit<PlannedRun, 'service'> {
  strategyRef: Strategy;
  spec: DrillSpec;
  service?: LbService;
  band: Band | null;
  /** held faults: how long; crashes with no peer: the downtime */
  holdMs: number;
}

/** every measured run of the lab, in order, with its band, hold and estimated duration */
export function planRuns(lab: Lab, opts: { downtimeMs?: number } = {}): { runs: RunPlan[]; unsupported: { strategy: Strategy; reason: string }[] } {
  const strategies: Strategy[] = [];
  const unsupported: { strategy: Strategy; reason: string }[] = [];
  for (const ref of lab.strategies) {
    const s = composeStrategy(ref);
    const blocking = blockingConflicts(s);
    if (blocking.length) unsupported.push({ strategy: s, reason: blocking.join('; ') });
    else strategies.push(s);
  }
  const runs: RunPlan[] = [];
  for (const s of strategies) {
    for (const spec of lab.drills) {
      const d = drillFor(spec.kind);
      for (const target of targetsOf(spec)) {
        const role = target === 'api' ? s.cp : s.svc;
        if (d.applicable(s, target) ?? role.drillIssue?.(spec.kind)) continue;
        for (const service of servicesOf(lab, spec.kind, target)) {
          const repeats = spec.kind === 'baseline' ? 1 : lab.repeats;
          for (let repeat = 0; repeat < repeats; repeat++) {
            runs.push(planOne(lab, s, spec, target, service, repeat, strategies, opts.downtimeMs ?? DEFAULT_DOWNTIME_MS));
          }
        }
      }
    }
  }
  return { runs, unsupported };
}

/**
 * The band a run is judged by: the mechanism's (from its timers), shaped by how long the fault is
 * held (a held fault, or a crash nobody can take over and whose node comes back after its
 * downtime), and for an ETP Cluster Service the endpoint tail of a silent node's pod.
 */
export function runBand(lab: Lab, s: Strategy, spec: DrillSpec, target: Target, service: LbService | undefined, victimRunsPod: boolean, holdMs: number): Band | null {
  const d = drillFor(spec.kind);
  const mech = mechanismBand(lab, s, spec.kind, target);
  let band = d.held ? heldBand(mech, holdMs) : mech;
  if (spec.kind === 'crash' && !mech && holdMs > 0) {
    const role = target === 'api' ? s.cp : s.svc;
    band = downtimeBand(holdMs, role.rejoin?.({ topology: lab.topology, strategy: s.ref, roles: { cp: s.cp, svc: s.svc } }));
  }
  if (target === 'service') band = withEndpointTail(band, spec.kind, service ?? lab.topology.services[0], lab.topology, victimRunsPod, holdMs, d.held || holdMs > 0, lab.traffic.probeIntervalMs);
  return band;
}

/** how long the fault is held: held faults as holdFor says, a crash nobody can take over for its downtime, others not */
export function runHold(lab: Lab, s: Strategy, spec: DrillSpec, target: Target, all: Strategy[], downtimeMs: number): number {
  if (drillFor(spec.kind).held) return holdFor(lab, spec, target, all);
  if (spec.kind === 'crash' && !mechanismBand(lab, s, spec.kind, target)) return downtimeMs;
  return 0;
}

function planOne(lab: Lab, s: Strategy, spec: DrillSpec, target: Target, service: LbService | undefined, repeat: number, all: Strategy[], downtimeMs: number): RunPlan {
  const d = drillFor(spec.kind);
  const holdMs = runHold(lab, s, spec, target, all, downtimeMs);
  const band = runBand(lab, s, spec, target, service, true, holdMs);
  const reboot = holdMs === 0 && d.primitives.some((p) => p === 'shutdown' || p === 'crash') ? RESTORE_BOOT_MS : 0;
  return {
    strategy: s.ref.id,
    strategyRef: s,
    spec,
    target,
    ...(service ? { service } : {}),
    drill: spec.kind,
    repeat,
    band,
    holdMs,
    estimateMs: runEstimateMs(lab, spec, band, holdMs, { prepare: !!d.prepare, reboot }),
  } as RunPlan;
}

/**
 * How long one measured run should take, as measure.ts runs it: the overhead, the prepare step
 * and its settle, the pre window, then for a fault the observation until the probe has been
 * clean for STABLE_MS after the outage (never before the band's minimum; a held fault not before
 * its restore), the "after" window, and the victim's boot when it is restored after the traffic.
 * The outage expected is the middle of its band: a best guess for a countdown, where the floor
 * takes the band's maximum because no run can beat it.
 */
/** the "after" window of a run (and the settle after a prepare step): the lab's settle, 3 s at most */
export function afterWindowMs(spec: DrillSpec): number {
  return Math.min(spec.settleMs, 3000);
}

/** how long a fault's observation may last after the injection at most (measure.ts stops there) */
export function observationWindowMs(spec: DrillSpec, band: Band | null, holdMs: number): number {
  return Math.max(spec.observeMs, band ? band.max * 1.5 + 2000 : 0, holdMs + 5000);
}

export function runEstimateMs(lab: Lab, spec: DrillSpec, band: Band | null, holdMs: number, o: { prepare: boolean; reboot: number }): number {
  const settle = afterWindowMs(spec);
  let during: number;
  if (spec.kind === 'baseline') during = baselineWindowMs(lab, spec);
  else if (spec.kind === 'class-conflict') during = Math.max(spec.observeMs, 1000);
  else {
    const expected = band ? (band.min + band.max) / 2 : 0;
    const observed = Math.max(expected + STABLE_MS, band?.min ?? 0, holdMs, STABLE_MS);
    during = Math.min(observed, observationWindowMs(spec, band, holdMs)) + settle;
  }
  const overhead = RUN_OVERHEAD_MS + RUN_OVERHEAD_PER_NODE_MS * lab.topology.nodes.length;
  return Math.round(overhead + (o.prepare ? settle : 0) + spec.preMs + during + o.reboot);
}

/** a baseline window long enough for the percentiles the report shows, at the lab's request rate */
export function baselineWindowMs(lab: Lab, spec: DrillSpec): number {
  const needed = Math.ceil((BASELINE_SAMPLES / Math.max(1, lab.traffic.rate)) * 1000);
  return Math.max(1000, Math.min(spec.observeMs, needed));
}

/** how long the client drives each endpoint, unmeasured, before a strategy's first run (measure.ts warmUp) */
export const WARM_UP_MS = 1000;

/**
 * What a strategy costs besides its drills on the emulated nodes: its apply (agents start a few
 * at a time, then the readiness waits), its unapply and its warm-up. Measured on the 2-core
 * machine with the bundled agents, apply start to the first drill plus the unapply: smb (5 nodes)
 * 12.8 s (21 s with a router restart for BFD), enterprise (35 nodes) 60–71 s — about 2 s + 1.75 s
 * per node besides the warm-up.
 */
export function applyEstimateMs(lab: Lab): number {
  return 2000 + 1750 * lab.topology.nodes.length + WARM_UP_MS * (1 + lab.topology.services.length);
}

/**
 * Bringing a lab instance up before its first strategy: namespaces, routers and their sessions,
 * etcd, the client's agent. Measured: 2.2 s for smb, 4.9–7.8 s for enterprise (docs/bench-labs.md).
 */
export function bringUpEstimateMs(lab: Lab): number {
  return 1000 + 200 * lab.topology.nodes.length;
}

/**
 * Strategies into `n` lanes (one lab instance each), longest first into the least loaded lane,
 * so the whole run lasts about as long as its longest lane.
 */
export function lanes<T extends { id: string }>(strategies: T[], costMs: (s: T) => number, n: number): T[][] {
  const out: { items: T[]; ms: number }[] = Array.from({ length: Math.max(1, Math.min(n, strategies.length)) }, () => ({ items: [], ms: 0 }));
  for (const s of [...strategies].sort((a, b) => costMs(b) - costMs(a))) {
    const lane = out.reduce((a, b) => (b.ms < a.ms ? b : a));
    lane.items.push(s);
    lane.ms += costMs(s);
  }
  // within a lane, the lab's own order
  const order = new Map(strategies.map((s, i) => [s.id, i]));
  return out.filter((l) => l.items.length).map((l) => l.items.sort((a, b) => order.get(a.id)! - order.get(b.id)!));
}

/**
 * The floor of a run: for every strategy the sum over its drills and repeats of the expected
 * outage maximum (or the hold) plus the fixed settle time; with strategies in parallel, the
 * longest strategy. What no scheduling can beat.
 */
export function floorMs(runs: RunPlan[], parallel: number): number {
  const per = new Map<string, number>();
  for (const r of runs) {
    const fixed = afterWindowMs(r.spec) + STABLE_MS;
    const core = r.drill === 'baseline' || r.drill === 'class-conflict' ? 0 : Math.max(r.band?.max ?? 0, r.holdMs);
    per.set(r.strategy, (per.get(r.strategy) ?? 0) + core + fixed);
  }
  const ms = [...per.values()].sort((a, b) => b - a);
  if (parallel <= 1) return ms.reduce((a, b) => a + b, 0);
  // lanes: longest-first packing, as the run does
  return Math.max(0, ...lanes([...per.entries()].map(([id, m]) => ({ id, m })), (x) => x.m, parallel).map((l) => l.reduce((a, x) => a + x.m, 0)));
}
