/**
 * The `run` flow: plan → bring up one lab instance per lane (strategies run in parallel lanes
 * when the provider isolates instances) → for each strategy of a lane: render → apply → each
 * planned drill run measured → unapply → results.json after every run → reports → down. Also on
 * Ctrl-C and errors: the runs completed so far are written (interrupted: true) and reported
 * BEFORE the instances are torn down, and every instance is torn down whatever happens.
 *
 * Everything the run does and observes goes out on its event stream (./events.ts): the terminal
 * progress, the live page and the output directory's `live.jsonl` are listeners.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { Lab, StrategyRef, Target } from '../model/types.js';
import type { Provider, RunningLab, UpContext } from '../providers/types.js';
import { RUN_FLAG_TEXT, type Results, type RunRecord, type StrategySummary } from '../results/types.js';
import type { Strategy } from '../strategies/types.js';
import { renderStrategy } from '../strategies/compose.js';
import { fidelityNotes } from '../strategies/fidelity.js';
import { drill as drillFor } from '../drills/index.js';
import { attachLateStuck, measureDrill, warmUp } from './measure.js';
import { LabState, LabIdInUseError } from '../state/state.js';
import { now } from '../util/proc.js';
import { LabError } from '../util/errors.js';
import { newLabId, seeded } from './ids.js';
import { RunEvents } from './events.js';
import { applyEstimateMs, bringUpEstimateMs, floorMs, lanes, planRuns, type RunPlan } from './plan.js';
import { CPU_SHARE, estimateCapacity, instanceCpus, machineFacts, MEMORY_SHARE, SIM_NODES_PER_CPU } from '../model/capacity.js';

export interface Progress {
  step(title: string): void;
  log(message: string): void;
}

export interface EngineOptions {
  provider: Provider;
  out: string;
  keep: boolean;
  signal?: AbortSignal;
  progress: Progress;
  /** lab instances at once (each strategy of the run on its own); default: what the machine holds */
  parallel?: number;
  /** the run's event stream (listeners: live page, live.jsonl); one is made when absent */
  events?: RunEvents;
  /** also stream agent/wire events and router sessions (a live view is watching) */
  observe?: boolean;
  /** a crash nobody can take over: how long the node stays down before it comes back */
  downtimeMs?: number;
}

export function unsupportedRecord(strategy: string, target: Target, drill: string, reason: string): RunRecord {
  return {
    strategy,
    target,
    drill,
    victim: null,
    repeat: 0,
    outageMs: null,
    expectedOutageMs: null,
    errors: 0,
    resets: 0,
    requests: 0,
    latencyMs: { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
    throughputRps: 0,
    supported: false,
    reason,
  } as RunRecord;
}

/** A fresh lab id whose state dir this process creates exclusively (a clash draws another). */
function createState(lab: Lab, opts: { provider: Provider; out: string }): LabState {
  for (let attempt = 0; ; attempt++) {
    const { id, prefix } = newLabId(lab.name);
    try {
      return LabState.create({
        id,
        prefix,
        lab: lab.name,
        labFile: lab.file,
        provider: opts.provider.name,
        createdAt: new Date().toISOString(),
        ownerPid: process.pid,
        status: 'starting',
        out: opts.out,
      });
    } catch (e) {
      if (e instanceof LabIdInUseError && attempt < 20) continue;
      throw e;
    }
  }
}

export async function bringUp(lab: Lab, opts: Pick<EngineOptions, 'provider' | 'out' | 'signal' | 'progress'>): Promise<{ running: RunningLab; state: LabState; bringUpMs: number }> {
  const state = createState(lab, opts);
  const t0 = now();
  const { prefix } = state.meta();
  opts.progress.step(`bring up ${lab.name} on ${opts.provider.name} (${prefix})`);
  const ctx: UpContext = { id: state.id, prefix, state, signal: opts.signal, progress: (m) => opts.progress.log(m) };
  try {
    const running = await opts.provider.up(lab, ctx);
    state.setStatus('up');
    return { running, state, bringUpMs: now() - t0 };
  } catch (e) {
    // the provider tears down what it made; the state goes with it
    state.remove();
    throw e;
  }
}

/**
 * How many instances at once: one per strategy, as many as the provider isolates, the machine's
 * cores (every instance's agents and probes need CPU time or the timings they measure drift) and
 * memory (the capacity estimate of one instance) allow.
 */
export function defaultParallel(lab: Lab, provider: Provider, strategies: number): number {
  const m = machineFacts();
  const perInstanceMiB = estimateCapacity(lab, provider.name).memoryMiB;
  const byMemory = Math.floor((m.availableMemMiB * MEMORY_SHARE) / Math.max(1, perInstanceMiB));
  const byCpu = Math.max(1, Math.min(m.cpus, Math.floor((SIM_NODES_PER_CPU * m.cpus) / Math.max(1, lab.topology.nodes.length)), Math.floor((m.cpus * CPU_SHARE) / instanceCpus(lab))));
  return Math.max(1, Math.min(strategies, provider.maxInstances ?? 1, byCpu, byMemory));
}

/** results.json, rewritten atomically after every completed run (a crash never leaves half a file) */
class ResultsBook {
  readonly results: Results;
  private readonly order: Map<string, number>;
  private final: Promise<string[]> | null = null;

  constructor(
    lab: Lab,
    provider: Provider,
    readonly out: string,
    strategies: StrategySummary[],
    extra: Partial<Results>,
  ) {
    const t = lab.topology;
    this.order = new Map(lab.strategies.map((s, i) => [s.id, i]));
    this.results = {
      lab: lab.name,
      topology: {
        name: t.name,
        controlPlanes: t.nodes.filter((n) => n.role === 'controlplane').length,
        workers: t.nodes.filter((n) => n.role === 'worker').length,
        racks: t.segments.filter((s) => s.kind === 'lan').length,
      },
      provider: { name: provider.name, emulated: provider.emulated, nodes: provider.nodes ?? (provider.emulated ? 'emulated' : 'talos'), components: {} },
      startedAt: new Date().toISOString(),
      bringUpMs: 0,
      runs: [],
      strategies,
      network: { l2: true, bgp: t.routers.some((r) => r.bgp !== false) },
      timers: t.timers as unknown as Record<string, unknown>,
      notes: provider.emulated
        ? [`${provider.name} provider: emulated Talos control plane (Talos VIP, kube-vip, MetalLB, KubePrism and the API server are the lab’s own agents with the real components’ election semantics and timers) on real kernel networking, FRR, HAProxy and etcd${provider.name === 'sim' ? '' : `, in ${provider.name} containers`}. These are not Talos measurements.`]
        : [],
      ...extra,
    } as Results;
  }

  add(r: RunRecord): void {
    this.results.runs.push(r);
    // the lab's strategy order, whichever lane finished first
    const rank = (x: RunRecord) => this.order.get(x.strategy) ?? 1e9;
    this.results.runs.sort((a, b) => rank(a) - rank(b));
    this.write();
  }

  write(): string | null {
    if (!this.results.runs.length) return null; // the contract wants at least one run
    mkdirSync(this.out, { recursive: true });
    const file = join(this.out, 'results.json');
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.results, null, 2) + '\n');
    renameSync(tmp, file);
    return file;
  }

  /** the final results.json and the reports from it (once; an interrupted run calls it before its teardown) */
  finish(t0: number, interrupted: boolean, log: (m: string) => void): Promise<string[]> {
    this.final ??= (async () => {
      this.results.durationMs = Math.round(now() - t0);
      if (interrupted) this.results.interrupted = true;
      const file = this.write();
      if (!file) {
        log('no run completed: nothing to write (results.json needs at least one run)');
        return [];
      }
      const { validateResults } = await import('../results/validate.js');
      const v = validateResults(this.results);
      if (!v.valid) log(`results.json does not validate against results.schema.json:\n${v.errors.join('\n')}`);
      const { writeReports } = await import('../report/writer.js');
      return [file, ...(await writeReports(this.results, this.out))];
    })();
    return this.final;
  }
}

export interface RunFlowResult {
  results: Results | null;
  files: string[];
  /** the instance left running with --keep */
  keptId?: string;
}

/** What a run will do on this provider, before anything starts: shared by the run and its dry run. */
export interface Schedule {
  summaries: StrategySummary[];
  /** strategies that cannot run here, with why (blocking conflicts, the provider's refusals) */
  refused: Map<string, string>;
  strategyOf: Map<string, Strategy>;
  /** the measured runs, in order */
  todo: RunPlan[];
  /** the lab's strategies that have runs to do */
  active: StrategyRef[];
  /** one strategy's cost: its switch and warm-up, and its runs' estimates */
  costOf(ref: StrategyRef): number;
  /** strategies per lab instance */
  laneList: StrategyRef[][];
  estimateMs: number;
  floor: number;
}

export function schedule(lab: Lab, provider: Provider, opts: Pick<EngineOptions, 'parallel' | 'observe' | 'downtimeMs'>): Schedule {
  const { runs: planned, unsupported: blocked } = planRuns(lab, { downtimeMs: opts.downtimeMs });
  const summaries: StrategySummary[] = [];
  const refused = new Map<string, string>();
  for (const b of blocked) refused.set(b.strategy.ref.id, b.reason);
  for (const ref of lab.strategies) {
    const s = provider.supports(ref, lab);
    if (!s.supported && !refused.has(ref.id)) refused.set(ref.id, s.reason);
  }
  const strategyOf = new Map<string, Strategy>();
  for (const r of planned) strategyOf.set(r.strategy, r.strategyRef);
  for (const b of blocked) strategyOf.set(b.strategy.ref.id, b.strategy);
  for (const ref of lab.strategies) {
    const s = strategyOf.get(ref.id);
    const reason = refused.get(ref.id);
    summaries.push({
      id: ref.id,
      cp: ref.cp,
      svc: ref.svc,
      description: s ? `${s.cp.title} + ${s.svc.title}` : ref.id,
      supported: !reason,
      ...(reason ? { reason } : {}),
      conflicts: s?.conflicts ?? [],
    });
  }
  const todo = planned.filter((r) => !refused.has(r.strategy));
  const active = lab.strategies.filter((s) => !refused.has(s.id) && todo.some((r) => r.strategy === s.id));
  const costOf = (ref: StrategyRef) => applyEstimateMs(lab) + todo.filter((r) => r.strategy === ref.id).reduce((a, r) => a + r.estimateMs, 0);
  // a room watching the live page follows one instance: strategies one after the other, unless
  // --parallel says otherwise (then the page follows the first instance)
  const parallel = Math.max(1, Math.min(opts.parallel ?? (opts.observe ? 1 : defaultParallel(lab, provider, active.length)), provider.maxInstances ?? 1, Math.max(1, active.length)));
  const laneList = lanes(active, costOf, parallel);
  // each lane brings its own instance up, then runs its strategies one after the other
  const estimateMs = Math.max(0, ...laneList.map((l) => l.reduce((a, s) => a + costOf(s), bringUpEstimateMs(lab))));
  return { summaries, refused, strategyOf, todo, active, costOf, laneList, estimateMs, floor: floorMs(todo, laneList.length) };
}

/** the one-line plan a run prints before it starts (and a dry run prints instead of starting) */
export function planLine(s: Pick<Schedule, 'todo' | 'active' | 'laneList' | 'estimateMs' | 'floor'>): string {
  const n = s.active.length;
  const k = s.laneList.length;
  return (
    `plan: ${s.todo.length} runs of ${n} strateg${n === 1 ? 'y' : 'ies'} on ${k} lab instance${k === 1 ? '' : 's'}; ` +
    `estimated ${fmtDuration(s.estimateMs)} (floor ${fmtDuration(s.floor)})`
  );
}

export async function runLabFlow(lab: Lab, opts: EngineOptions): Promise<RunFlowResult> {
  const t0 = now();
  const out = resolve(opts.out);
  const events = opts.events ?? new RunEvents();
  const { provider } = opts;
  // the caller's signal (Ctrl-C) and a lane's failure both stop every lane
  const failFast = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failFast.signal]) : failFast.signal;
  const interrupted = () => Boolean(opts.signal?.aborted);
  await provider.check(lab);
  mkdirSync(join(out, 'samples'), { recursive: true });

  // ---- the plan: what runs, what cannot, how long it should take --------------------------
  const { summaries, refused, strategyOf, todo, active, costOf, laneList, estimateMs, floor } = schedule(lab, provider, opts);
  const book = new ResultsBook(lab, provider, out, summaries, { parallel: laneList.length, estimateMs });
  for (const ref of lab.strategies) {
    const reason = refused.get(ref.id);
    if (!reason) continue;
    opts.progress.log(`${ref.id}: unsupported — ${reason}`);
    events.emit({ type: 'strategy', t: now(), strategy: ref.id, phase: 'unsupported', reason });
    for (const spec of lab.drills) for (const target of spec.target === 'both' ? (['api', 'service'] as const) : [spec.target]) book.results.runs.push(unsupportedRecord(ref.id, target, spec.kind, reason));
  }
  opts.progress.log(planLine({ todo, active, laneList, estimateMs, floor }));
  events.emit({
    type: 'run-start',
    t: now(),
    lab: lab.name,
    provider: provider.name,
    emulated: provider.emulated,
    instances: [],
    topology: lab.topology,
    strategies: lab.strategies.map((s) => ({ id: s.id, label: s.label ?? s.id, recommended: Boolean(s.recommended) })),
    plan: todo.map((r) => ({ strategy: r.strategy, target: r.target, ...(r.service ? { service: r.service.name } : {}), drill: r.drill, repeat: r.repeat, estimateMs: r.estimateMs })),
    estimateMs,
    out,
  });

  // ---- progress: runs done and time left ----------------------------------------------------
  let done = 0;
  const left = new Map(laneList.map((l, i) => [i, l.reduce((a, s) => a + costOf(s), bringUpEstimateMs(lab))]));
  const tick = (lane: number, ms: number) => {
    left.set(lane, Math.max(0, (left.get(lane) ?? 0) - ms));
    const leftMs = Math.max(0, ...left.values());
    events.emit({ type: 'progress', t: now(), done, total: todo.length, leftMs });
    return leftMs;
  };

  // ---- the lanes ------------------------------------------------------------------------------
  let keptId: string | undefined;
  let seed = 1;
  const seeds = new Map(todo.map((r) => [r, seed++]));
  const runLane = async (laneIdx: number, refs: StrategyRef[]): Promise<void> => {
    const { running, state, bringUpMs } = await bringUp(lab, { provider, out, signal, progress: opts.progress });
    book.results.bringUpMs = Math.max(book.results.bringUpMs, Math.round(bringUpMs));
    events.emit({ type: 'log', t: now(), message: `lab instance ${running.id} up in ${Math.round(bringUpMs)} ms for ${refs.map((r) => r.id).join(', ')}` });
    tick(laneIdx, bringUpEstimateMs(lab));
    try {
      state.setStatus('running');
      if (!Object.keys(book.results.provider.components).length) book.results.provider.components = await running.components();
      for (const [i, ref] of refs.entries()) {
        signal?.throwIfAborted();
        const s = strategyOf.get(ref.id)!;
        opts.progress.step(`${ref.id}: apply`);
        events.emit({ type: 'strategy', t: now(), strategy: ref.id, phase: 'apply', ...(laneIdx ? { watched: false } : {}) });
        await running.apply(ref, renderStrategy(lab.topology, s));
        // what is left counts estimates of the work not done yet (a display counts the wall time down between two ticks)
        tick(laneIdx, applyEstimateMs(lab));
        if (todo.some((x) => x.strategy === ref.id)) {
          opts.progress.step(`${ref.id}: warm-up`);
          await warmUp(running, s, signal);
        }
        events.emit({ type: 'strategy', t: now(), strategy: ref.id, phase: 'ready', ...(laneIdx ? { watched: false } : {}) });
        let drilled = false;
        try {
          let prev: RunRecord | undefined;
          for (const r of todo.filter((x) => x.strategy === ref.id)) {
            signal?.throwIfAborted();
            const record = await runOne(running, r, laneIdx, prev);
            if (record) {
              book.add(record);
              done++;
              prev = record;
            }
          }
          drilled = true;
        } finally {
          events.emit({ type: 'strategy', t: now(), strategy: ref.id, phase: 'unapply', ...(laneIdx ? { watched: false } : {}) });
          // after an abort nothing is unapplied: the instance is torn down right after; a lab that
          // switches in place goes from this strategy to the next one without an unapply
          if (!signal.aborted && !(drilled && running.switches && i + 1 < refs.length)) await running.unapply(ref);
        }
      }
    } finally {
      // an interrupted run writes what it measured before anything is torn down
      if (interrupted()) await book.finish(t0, true, (m) => opts.progress.log(m)).catch(() => undefined);
      if (opts.keep && !signal.aborted) {
        keptId = running.id;
        opts.progress.log(`--keep: lab ${running.id} left running; remove it with: npm run lab -- down ${running.id}`);
      } else {
        opts.progress.step(`tear down ${running.id}`);
        await running.down();
        state.remove();
      }
    }
  };

  const runOne = async (running: RunningLab, r: RunPlan, laneIdx: number, prev: RunRecord | undefined): Promise<RunRecord | null> => {
    const d = drillFor(r.spec.kind);
    // a drill the provider cannot do is recorded as unsupported with its reason; the run goes on
    for (const p of d.primitives) {
      const s = provider.supportsDrill?.(p, r.strategyRef.ref);
      if (s && !s.supported) {
        opts.progress.log(`${r.strategy} ${r.target} ${r.drill}: unsupported on ${provider.name} — ${s.reason}`);
        tick(laneIdx, r.estimateMs);
        return { ...unsupportedRecord(r.strategy, r.target, r.drill, s.reason), repeat: r.repeat } as RunRecord;
      }
    }
    const label = `${r.strategy} · ${r.target}${r.service && r.drill === 'baseline' ? `:${r.service.name}` : ''} · ${r.drill} #${r.repeat + 1}`;
    // the title says how long the whole run still takes (the slowest lane's estimate)
    opts.progress.step(`${label} · ${fmtDuration(Math.max(0, ...left.values()))} left`);
    // the live view follows one instance (the first): the others' drills stream nothing but their
    // results, or its topology would jump between instances with the same node names
    const watched = laneIdx === 0;
    const m = await measureDrill({ lab: running, plan: r, random: seeded(seeds.get(r)!), signal, log: (msg) => opts.progress.log(msg), events: watched ? events : undefined, observe: watched && opts.observe });
    if (prev && m.stuckBefore.length) attachLateStuck(prev, m.stuckBefore);
    const file = `samples/${r.strategy}.${r.target}${r.service && r.target === 'service' ? `.${r.service.name}` : ''}.${r.drill}.${r.repeat}.json`;
    writeFileSync(join(out, file), JSON.stringify(m.raw));
    // the known differences from the real components that apply to this run (docs/fidelity.md)
    const fidelity = fidelityNotes(r.strategyRef, { kind: r.spec.kind, target: r.target }, { topology: lab.topology, emulated: (provider.nodes ?? (provider.emulated ? 'emulated' : 'talos')) === 'emulated' });
    const record = { ...m.record, samples: file, fidelity } as RunRecord;
    // nothing earlier in this strategy to blame (cannot happen after an apply): say it here
    if (!prev && m.stuckBefore.length) record.notes = [...(record.notes ?? []), ...m.stuckBefore.map((u) => `found stuck before this drill and restarted before its traffic started: ${u}`)];
    const leftMs = tick(laneIdx, r.estimateMs);
    opts.progress.log(`${summaryLine(record)} · ${fmtDuration(leftMs)} left`);
    events.emit({ type: 'drill-end', t: now(), strategy: r.strategy, target: r.target, drill: r.drill, repeat: r.repeat, record });
    return record;
  };

  const outcome = await Promise.allSettled(
    laneList.map((refs, i) =>
      runLane(i, refs).catch((e) => {
        // one lane failing stops the others: their instances tear down too
        failFast.abort(e);
        throw e;
      }),
    ),
  );
  const failed = outcome.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as Error);
  const files = await book.finish(t0, interrupted(), (m) => opts.progress.log(m));
  if (files.length) events.emit({ type: 'report', t: now(), files });
  if (failed.length) {
    const first = failed.find((e) => !(e instanceof Error && e.name === 'AbortError')) ?? failed[0]!;
    if (interrupted()) throw opts.signal!.reason ?? first;
    throw failed.length > 1 ? new LabError(`${failed.length} lab instances failed:\n${failed.map((e) => e.message).join('\n')}`) : first;
  }
  return { results: book.results, files, keptId };
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

export function summaryLine(r: RunRecord): string {
  const band = r.expectedOutageMs ? ` band ${r.expectedOutageMs.min}–${r.expectedOutageMs.max} ms${r.withinBand === false ? ` OUTSIDE${r.outsideReason === 'host-load' ? ` (${RUN_FLAG_TEXT.hostLoad})` : ''}` : ''}` : '';
  const outage = r.outageMs === null || r.outageMs === undefined ? '-' : r.recovered === false ? `> ${r.outageMs} ms (not recovered)` : `${r.outageMs} ms`;
  const unclean = (r.cleanBeforeFault === false ? ` (${RUN_FLAG_TEXT.uncleanBefore})` : '') + (r.healOutage?.recovered === false ? ` (${RUN_FLAG_TEXT.healOpen})` : '');
  return `${r.strategy} ${r.target} ${r.drill}${r.victim ? ` (${r.victim})` : ''}: outage ${outage}${unclean}${band}, errors ${r.errors}, resets ${r.resets ?? 0}, p99 ${r.latencyMs.p99} ms, ${Math.round(r.throughputRps)} req/s`;
}

