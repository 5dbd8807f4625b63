/**
 * Strategy composition: a strategy is a control-plane role × a service role (plus the cluster's
 * base components, which every strategy runs: API servers, KubePrism, echo pods, kube-proxy).
 * Rendering is pure; the conflicts the article warns about are found here, from the roles' traits:
 *  - pitfall 3: two mechanism families both running a BGP speaker (TCP/179) on the nodes;
 *  - pitfall 2: two families both claiming the Services that have no spec.loadBalancerClass.
 */
import type { StrategyRef, Timers, Topology } from '../model/types.js';
import type { Artifacts, CpRole, RenderedFile, SimPlan, Strategy, SvcRole } from './types.js';
import type { ComponentSpec } from '../emulation/agent/types.js';
import { LabError } from '../util/errors.js';
import { parseStrategyId } from './registry.js';
import { cpBaseComponents } from '../emulation/base-cp.js';
import { renderRouterFrr } from '../render/frr.js';
import { bfdFor } from './bands.js';
import { svcBaseComponents } from '../emulation/base-svc.js';

/** The address clients and nodes use for the Kubernetes API: the VIP, or the external load balancer. */
export function apiEndpoint(t: Topology, cp: CpRole): string {
  if (cp.traits.endpoint === 'vip') return t.vip;
  if (!t.loadBalancer) throw new LabError(`${cp.id}: the API endpoint is the load-balancer host, and topology ${t.name} has none (topology key loadBalancer:)`);
  return t.loadBalancer.ip;
}

export function apiEndpointUrl(t: Topology, cp: CpRole): string {
  return `https://${apiEndpoint(t, cp)}:${t.apiPort}`;
}

/** The CNI a real cluster must be built with for this strategy (a role may need Cilium). */
export function clusterCni(s: Pick<Strategy, 'cp' | 'svc'>): 'flannel' | 'cilium' {
  return s.cp.real?.cni ?? s.svc.real?.cni ?? 'flannel';
}

/** The BGP timers the strategy's speakers use, so the routers are configured to match. */
export function routerBgpTimers(t: Topology, s: Pick<Strategy, 'cp' | 'svc'>): Timers['bgp'] {
  return s.svc.bgpTimers?.(t) ?? s.cp.bgpTimers?.(t) ?? t.timers.bgp;
}

/**
 * Every BGP router's frr.conf under this strategy: the node sessions on the timers the strategy's
 * speakers use (a router is configured to match its peers; the negotiated hold time is the
 * smaller of both) and BFD when the strategy asks for it. One source for the real routers' files
 * and the routers the emulated lab runs, so the sim's router is the one the bands assume.
 */
export function routerConfs(t: Topology, s: Pick<Strategy, 'cp' | 'svc' | 'ref'>): Record<string, string> {
  const timers = routerBgpTimers(t, s);
  const bfd = bfdFor(t, s.ref);
  return Object.fromEntries(t.routers.filter((r) => r.bgp !== false).map((r) => [r.name, renderRouterFrr(r, t, { timers, bfd })]));
}

/** Pitfalls of putting these two roles together (human sentences; 'pitfall 3' ones are fatal). */
export function strategyConflicts(ref: StrategyRef, cp: CpRole, svc: SvcRole): string[] {
  const out: string[] = [];
  if (cp.traits.bgp && svc.traits.bgp && cp.family !== svc.family) {
    out.push(`pitfall 3: ${cp.id} and ${svc.id} both run a BGP speaker on the nodes and both want TCP port 179; only one can bind it`);
  }
  if (cp.family !== svc.family && cp.claimsClasslessServices?.(ref) && svc.claimsClasslessServices?.(ref)) {
    out.push(`pitfall 2: ${cp.id} (API) and ${svc.id} both claim class-less Services (no spec.loadBalancerClass): the IP flaps between them`);
  }
  return out;
}

export function composeStrategy(ref: StrategyRef): Strategy {
  const p = parseStrategyId(ref.id);
  if ('error' in p) throw new LabError(p.error);
  return { ref, cp: p.cp, svc: p.svc, conflicts: strategyConflicts(ref, p.cp, p.svc) };
}

/** Two controllers claim the class-less Services (pitfall 2): a behaviour to observe, not a bar to running. */
export function claimsConflict(s: Strategy): boolean {
  return s.conflicts.some((c) => c.startsWith('pitfall 2'));
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
      // one process serves both roles of a family (kube-vip for the API and Services): merge their configs
      if (same) same.config = { ...same.config, ...s.config };
      else list.push({ ...s, config: { ...s.config } });
    }
  }
}

/**
 * Render everything a strategy needs (pure): the roles' own files and sim plan, merged. The
 * Talos machine-config side of a real cluster (endpoint, KubePrism, cert SANs…) is the Talos node
 * kind's, added by the providers that run Talos (and by `--dry-run --render`).
 */
export function renderStrategy(topology: Topology, s: Strategy): Artifacts {
  const ctx = { topology, strategy: s.ref, roles: { cp: s.cp, svc: s.svc } };
  const sim: SimPlan = { components: {}, speakers: {}, daemons: [], routers: routerConfs(topology, s) };
  mergeComponents(sim.components, cpBaseComponents(topology));
  mergeComponents(sim.components, svcBaseComponents(topology));
  const files: RenderedFile[] = [];
  for (const role of [s.cp, s.svc]) {
    const r = role.render(ctx);
    mergeComponents(sim.components, r.sim?.components);
    for (const [node, sp] of Object.entries(r.sim?.speakers ?? {})) {
      const have = sim.speakers[node];
      if (have && have.owner !== sp.owner) continue; // pitfall 3, reported by composeStrategy
      if (have) have.staticPrefixes = [...new Set([...have.staticPrefixes, ...sp.staticPrefixes])];
      else sim.speakers[node] = { ...sp };
    }
    sim.daemons.push(...(r.sim?.daemons ?? []));
    for (const f of r.files ?? []) if (!files.some((x) => x.path === f.path)) files.push(f);
  }
  return { files, sim };
}
