/**
 * Strategy composition: a strategy is a control-plane mechanism × a service mechanism (plus the
 * cluster's base components, which every strategy runs: API servers, KubePrism, echo pods,
 * kube-proxy). Rendering is pure; conflicts the article warns about are found here:
 *  - pitfall 3: two different mechanisms both wanting a BGP speaker (TCP/179) on one node;
 *  - pitfall 2: kube-vip and MetalLB without spec.loadBalancerClass both claiming a Service.
 */
import type { StrategyRef, Topology, CpMechanismId, SvcMechanismId } from '../model/types.js';
import type { Artifacts, Mechanism, SimPlan, Strategy } from './types.js';
import type { ComponentSpec } from '../agent/types.js';
import { LabError } from '../util/errors.js';
import { cpMechanisms } from './cp/index.js';
import { svcMechanisms } from './svc/index.js';
import { cpBaseComponents } from '../cluster/base-cp.js';
import { svcBaseComponents } from '../cluster/base-svc.js';

export const CP_IDS = Object.keys(cpMechanisms) as CpMechanismId[];
export const SVC_IDS = Object.keys(svcMechanisms) as SvcMechanismId[];

export function parseStrategyId(id: string): { cp: CpMechanismId; svc: SvcMechanismId } {
  const [cp, svc, extra] = id.split('+');
  if (!cp || !svc || extra !== undefined || !(cp in cpMechanisms) || !(svc in svcMechanisms)) {
    throw new LabError(`unknown strategy '${id}': expected <cp>+<svc> with cp ∈ {${CP_IDS.join(', ')}} and svc ∈ {${SVC_IDS.join(', ')}}`);
  }
  return { cp: cp as CpMechanismId, svc: svc as SvcMechanismId };
}

export function composeStrategy(ref: StrategyRef): Strategy {
  const cp = (cpMechanisms as Record<string, Mechanism>)[ref.cp];
  const svc = (svcMechanisms as Record<string, Mechanism>)[ref.svc];
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
  mergeComponents(sim.components, cpBaseComponents(topology));
  mergeComponents(sim.components, svcBaseComponents(topology));
  const files = [];
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
  try {
    const { renderStrategyFiles } = await import('../render/files.js');
    files.push(...renderStrategyFiles(topology, s.ref));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  return { files, sim };
}
