/**
 * The `run` flow (DESIGN.md): provider.up → for each strategy: render → apply → for each drill ×
 * target × repeat: measure → unapply → results.json + reports → down (also on Ctrl-C and errors:
 * `await using` guarantees teardown).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DrillSpec, Lab, Target } from '../model/types.js';
import type { Provider, RunningLab } from '../providers/types.js';
import type { Results, RunRecord } from '../results/types.js';
import { composeStrategy, renderStrategy, blockingConflicts } from '../strategies/compose.js';
import { drill as drillFor } from '../drills/index.js';
import { measureDrill } from './measure.js';
import { LabState } from '../state/state.js';
import { now } from '../util/proc.js';
import { newLabId, seeded } from './ids.js';

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
}

function targetsOf(spec: DrillSpec): Target[] {
  return spec.target === 'both' ? ['api', 'service'] : [spec.target];
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

export async function bringUp(lab: Lab, opts: EngineOptions): Promise<{ running: RunningLab; state: LabState; bringUpMs: number }> {
  const { id, prefix } = newLabId(lab.name);
  const state = LabState.create({
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
  const t0 = now();
  opts.progress.step(`bring up ${lab.name} on ${opts.provider.name} (${prefix})`);
  const running = await opts.provider.up(lab, { id, prefix, state, signal: opts.signal, progress: (m) => opts.progress.log(m) });
  state.setStatus('up');
  return { running, state, bringUpMs: now() - t0 };
}

export async function runLabFlow(lab: Lab, opts: EngineOptions): Promise<Results> {
  const startedAt = new Date();
  const t0 = now();
  await opts.provider.check(lab);
  const { running, state, bringUpMs } = await bringUp(lab, opts);
  const out = resolve(opts.out);
  mkdirSync(join(out, 'samples'), { recursive: true });
  const runs: RunRecord[] = [];
  const strategies: NonNullable<Results['strategies']> = [];
  let components: Record<string, string> = {};
  try {
    state.setStatus('running');
    components = await running.components();
    let seed = 1;
    for (const ref of lab.strategies) {
      opts.signal?.throwIfAborted();
      const strategy = await composeStrategy(ref);
      const support = opts.provider.supports(ref, lab);
      const blocking = blockingConflicts(strategy);
      const reason = !support.supported ? support.reason : blocking.length ? blocking.join('; ') : null;
      strategies.push({ id: ref.id, cp: ref.cp, svc: ref.svc, description: `${strategy.cp.title} + ${strategy.svc.title}`, supported: reason === null, ...(reason ? { reason } : {}), conflicts: strategy.conflicts } as never);
      if (reason) {
        opts.progress.log(`${ref.id}: unsupported — ${reason}`);
        for (const spec of lab.drills) for (const target of targetsOf(spec)) runs.push(unsupportedRecord(ref.id, target, spec.kind, reason));
        continue;
      }
      opts.progress.step(`strategy ${ref.id}: apply`);
      const artifacts = await renderStrategy(lab.topology, strategy);
      await running.apply(ref, artifacts);
      try {
        for (const spec of lab.drills) {
          const d = drillFor(spec.kind);
          for (const target of targetsOf(spec)) {
            const role = target === 'api' ? strategy.cp : strategy.svc;
            const why = d.applicable(strategy, target) ?? role.drillIssue?.(spec.kind) ?? null;
            if (why) {
              opts.progress.log(`${ref.id} ${target} ${spec.kind}: skipped — ${why}`);
              continue;
            }
            // baseline runs once per Service (ETP Cluster vs Local shows client-IP preservation)
            const services = target === 'service' ? (spec.kind === 'baseline' ? lab.topology.services : [lab.topology.services[0]!]) : [undefined];
            for (const service of services) {
              for (let repeat = 0; repeat < (spec.kind === 'baseline' ? 1 : lab.repeats); repeat++) {
                opts.signal?.throwIfAborted();
                opts.progress.step(`${ref.id} · ${target}${service ? `:${service.name}` : ''} · ${spec.kind} #${repeat + 1}`);
                const m = await measureDrill({
                  lab: running,
                  strategy,
                  drill: d,
                  spec,
                  target,
                  repeat,
                  service,
                  random: seeded(seed++),
                  signal: opts.signal,
                  log: (msg) => opts.progress.log(msg),
                });
                const file = `samples/${ref.id}.${target}${service ? `.${service.name}` : ''}.${spec.kind}.${repeat}.json`;
                writeFileSync(join(out, file), JSON.stringify(m.raw));
                runs.push({ ...m.record, samples: file } as RunRecord);
                opts.progress.log(summaryLine(m.record));
              }
            }
          }
        }
      } finally {
        await running.unapply(ref);
      }
    }
  } finally {
    if (opts.keep) {
      opts.progress.log(`--keep: lab ${running.id} left running; remove it with: npm run cli -- down ${running.id}`);
    } else {
      opts.progress.step('tear down');
      await running.down();
      state.remove();
    }
  }
  const t = lab.topology;
  return {
    lab: lab.name,
    topology: {
      name: t.name,
      controlPlanes: t.nodes.filter((n) => n.role === 'controlplane').length,
      workers: t.nodes.filter((n) => n.role === 'worker').length,
      racks: t.segments.filter((s) => s.kind === 'lan').length,
    },
    provider: { name: opts.provider.name, emulated: opts.provider.emulated, components },
    startedAt: startedAt.toISOString(),
    bringUpMs: Math.round(bringUpMs),
    durationMs: Math.round(now() - t0),
    runs,
    strategies,
    network: { l2: true, bgp: t.routers.length > 0 },
    timers: t.timers as unknown as Record<string, unknown>,
    notes: opts.provider.emulated
      ? ['sim provider: emulated Talos control plane (Talos VIP, kube-vip, MetalLB, KubePrism and the API server are the lab’s own agents with the real components’ election semantics and timers) on real kernel networking, FRR, HAProxy and etcd. These are not Talos measurements.']
      : [],
  } as Results;
}

export function summaryLine(r: RunRecord): string {
  const band = r.expectedOutageMs ? ` band ${r.expectedOutageMs.min}–${r.expectedOutageMs.max} ms${r.withinBand === false ? ' OUTSIDE' : ''}` : '';
  return `${r.strategy} ${r.target} ${r.drill}${r.victim ? ` (${r.victim})` : ''}: outage ${r.outageMs ?? '-'} ms${band}, errors ${r.errors}, resets ${r.resets ?? 0}, p99 ${r.latencyMs.p99} ms, ${Math.round(r.throughputRps)} req/s`;
}
