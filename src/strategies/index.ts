/**
 * Strategy composition: a strategy is a control-plane mechanism × a service mechanism (plus the
 * cluster's base components, which every strategy runs: API servers, KubePrism, echo pods,
 * kube-proxy). Rendering is pure; conflicts the article warns about are found here:
 *  - pitfall 3: two different mechanisms both wanting a BGP speaker (TCP/179) on one node;
 *  - pitfall 2: kube-vip and MetalLB without spec.loadBalancerClass both claiming a Service.
 */
import type { StrategyRef, Topology, CpMechanismId, SvcMechanismId } from '../model/types.js';
import type { Artifacts, Mechanism, RenderedFile, SimPlan, Strategy } from './types.js';
import type { ComponentSpec } from '../agent/types.js';
import { LabError } from '../util/errors.js';
import { loadPlugin } from '../util/plugin.js';
import { CP_MECHANISMS, SVC_MECHANISMS } from '../model/catalog.js';

const CP_IDS: readonly CpMechanismId[] = CP_MECHANISMS;
const SVC_IDS: readonly SvcMechanismId[] = SVC_MECHANISMS;

/** The mechanism modules: one record per family (src/strategies/cp/index.ts, svc/index.ts). */
async function mechanisms(): Promise<{ cp: Record<string, Mechanism>; svc: Record<string, Mechanism> }> {
  const [cp, svc] = await Promise.all([
    loadPlugin<Record<string, Mechanism>>('mechanism family', 'cp', import.meta.url, './cp/index.js', 'cpMechanisms'),
    loadPlugin<Record<string, Mechanism>>('mechanism family', 'svc', import.meta.url, './svc/index.js', 'svcMechanisms'),
  ]);
  return { cp, svc };
}

type BaseFn = (t: Topology) => Record<string, ComponentSpec[]>;
async function baseComponents(): Promise<BaseFn[]> {
  return Promise.all([
    loadPlugin<BaseFn>('cluster base', 'cp', import.meta.url, '../cluster/base-cp.js', 'cpBaseComponents'),
    loadPlugin<BaseFn>('cluster base', 'svc', import.meta.url, '../cluster/base-svc.js', 'svcBaseComponents'),
  ]);
}

export function parseStrategyId(id: string): { cp: CpMechanismId; svc: SvcMechanismId } {
  const [cp, svc, extra] = id.split('+');
  if (!cp || !svc || extra !== undefined || !CP_IDS.includes(cp as CpMechanismId) || !SVC_IDS.includes(svc as SvcMechanismId)) {
    throw new LabError(`unknown strategy '${id}': expected <cp>+<svc> with cp ∈ {${CP_IDS.join(', ')}} and svc ∈ {${SVC_IDS.join(', ')}}`);
  }
  return { cp: cp as CpMechanismId, svc: svc as SvcMechanismId };
}

export async function composeStrategy(ref: StrategyRef): Promise<Strategy> {
  const all = await mechanisms();
  const cp = all.cp[ref.cp];
  const svc = all.svc[ref.svc];
  if (!cp || !svc) parseStrategyId(ref.id); // throws with the valid list
  const conflicts: string[] = [];
  const family = (m: Mechanism) => m.id.split('-').slice(0, 2).join('-'); // kube-vip-arp → kube-vip
  if (cp!.uses.bgp && svc!.uses.bgp && family(cp!) !== family(svc!)) {
    conflicts.push(
      `pitfall 3: ${cp!.id} and ${svc!.id} both run a BGP speaker on the control-plane nodes and both want TCP port 179; only one can bind it`,
    );
  }
  if (ref.cp.startsWith('kube-vip') && ref.svc.startsWith('metallb') && ref.options.useLoadBalancerClass === false) {
    conflicts.push('pitfall 2: kube-vip and MetalLB both claim class-less Services (no spec.loadBalancerClass): the IP flaps between them');
  }
  return { ref, cp: cp!, svc: svc!, conflicts };
}

/** Is the conflict fatal (cannot run) or a behaviour to observe (class-conflict drill)? */
export function blockingConflicts(s: Strategy): string[] {
  return s.conflicts.filter((c) => c.startsWith('pitfall 3'));
}

function mergeComponents(into: Record<string, ComponentSpec[]>, add: Record<string, ComponentSpec[]> | undefined) {
  for (const [host, specs] of Object.entries(add ?? {})) {
    const list = (into[host] ??= []);
    for (const s of specs) {
      const same = list.find((x) => x.kind === s.kind && (x.name ?? x.kind) === (s.name ?? s.kind));
      // one kube-vip process serves both the API VIP and Services: merge their configs
      if (same) same.config = { ...same.config, ...s.config };
      else list.push({ ...s, config: { ...s.config } });
    }
  }
}

/** Render everything a strategy needs (pure). `files` come from the real-cluster renderers. */
export async function renderStrategy(topology: Topology, s: Strategy): Promise<Artifacts> {
  const ctx = { topology, strategy: s.ref };
  const sim: SimPlan = { components: {}, speakers: {} };
  for (const base of await baseComponents()) mergeComponents(sim.components, base(topology));
  const files: RenderedFile[] = [];
  for (const m of [s.cp, s.svc]) {
    const r = m.render(ctx);
    mergeComponents(sim.components, r.sim?.components);
    for (const [node, sp] of Object.entries(r.sim?.speakers ?? {})) {
      const have = sim.speakers[node];
      if (have && have.owner !== sp.owner) continue; // pitfall 3, reported by composeStrategy
      if (have) have.staticPrefixes = [...new Set([...have.staticPrefixes, ...sp.staticPrefixes])];
      else sim.speakers[node] = { ...sp };
    }
    if (r.sim?.haproxy) sim.haproxy = r.sim.haproxy;
    files.push(...(r.files ?? []));
  }
  type FilesFn = (t: Topology, ref: StrategyRef) => RenderedFile[];
  const renderStrategyFiles = await loadPlugin<FilesFn>('renderer', 'real-cluster files', import.meta.url, '../render/files.js', 'renderStrategyFiles');
  files.push(...renderStrategyFiles(topology, s.ref));
  return { files, sim };
}
