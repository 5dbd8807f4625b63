/**
 * The machine-config history of every node of a real cluster over a run, as a runtime drives it:
 * the config generated for the first strategy (cluster-wide patches + the runtime's per-node
 * patch), then, per strategy in the run's order, the live patches of its apply, and of its unapply
 * when the next one replaces it — a new cluster whenever the next strategy needs another CNI (the
 * runtime rebuilds the nodes). `checkLiveSequences` runs each history through the Talos rules
 * oracle (./rules.ts): every patch must be one Talos accepts, and every live call one it applies
 * without a reboot. Pure; the generated base config comes from the caller (talosctl makes it).
 */
import type { Lab, Node, StrategyRef } from '../../../model/types.js';
import { clusterCni, composeStrategy } from '../../../strategies/compose.js';
import { clusterPatchPlans, livePatchCalls, runtimeStrategyFiles, type TalosRuntimeProfile } from './cluster.js';
import { applyTalosPatch, checkCallSequence, type PatchCall, type TalosDoc } from './rules.js';

/** A runtime profile that can also say what it adds to a node's generated config. */
export interface SequenceProfile extends TalosRuntimeProfile {
  /** the runtime's per-node patch at config generation ('' = none) */
  nodeConfigPatch(t: Lab['topology'], n: Node): string;
}

export interface NodeHistory {
  node: Node;
  segments: { initial: string; gen: { name: string; yaml: string }[]; calls: PatchCall[] }[];
}

/** What each node's config goes through for the strategies in this order. */
export function nodeHistories(lab: Lab, order: StrategyRef[], profile: SequenceProfile): NodeHistory[] {
  const t = lab.topology;
  const out: NodeHistory[] = t.nodes.map((node) => ({ node, segments: [] }));
  let cni: string | undefined;
  for (const ref of order) {
    const need = clusterCni(composeStrategy(ref));
    if (need !== cni) {
      // a new cluster, generated for this strategy
      cni = need;
      const plans = clusterPatchPlans(t, ref, profile);
      for (const h of out) {
        const gen = plans.filter((x) => x.scope === 'all' || x.scope === h.node.role).map((x) => ({ name: `gen config ${x.file}`, yaml: x.content }));
        const own = profile.nodeConfigPatch(t, h.node);
        if (own) gen.push({ name: `${profile.name} node config`, yaml: own });
        h.segments.push({ initial: ref.id, gen, calls: [] });
      }
    }
    const files = runtimeStrategyFiles(t, ref, profile);
    for (const phase of ['apply', 'unapply'] as const) {
      for (const c of livePatchCalls(lab, files, `/${ref.id}`, phase, { profile })) {
        for (const h of out) {
          if (!c.hosts.includes(h.node.name)) continue;
          h.segments.at(-1)!.calls.push({ name: `${ref.id}: ${c.name}`, yamls: c.files.map((f) => f.content), live: true });
        }
      }
    }
  }
  return out;
}

/** Every order of the strategies (n ≤ maxFull), else every ordered pair plus the lab's own order. */
export function strategyOrders(refs: StrategyRef[], maxFull = 6): StrategyRef[][] {
  if (refs.length <= maxFull) {
    const perms = (xs: StrategyRef[]): StrategyRef[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
    return perms(refs);
  }
  const pairs = refs.flatMap((a) => refs.filter((b) => b !== a).map((b) => [a, b]));
  return [refs, ...pairs];
}

/**
 * Run every node's history, for every order of the lab's strategies the runtime supports, through
 * the oracle. `base` gives the generated config of a role (what `talosctl gen config` writes for
 * the topology's Talos version, before any patch). Returns every problem, with the order it came
 * from; [] = Talos accepts it all, live.
 */
export function checkLiveSequences(lab: Lab, profile: SequenceProfile, base: (role: 'controlplane' | 'worker') => TalosDoc[], o: { supports?: (ref: StrategyRef) => boolean; maxFull?: number } = {}): { problems: string[]; orders: number; calls: number } {
  const version = lab.topology.talos.version;
  const refs = lab.strategies.filter((r) => o.supports?.(r) ?? true);
  // one line per (node, problem), naming the first order that shows it and how many do
  const problems = new Map<string, { first: string; n: number }>();
  const seen = new Map<string, string[]>();
  let calls = 0;
  const orders = strategyOrders(refs, o.maxFull);
  for (const order of orders) {
    for (const h of nodeHistories(lab, order, profile)) {
      for (const seg of h.segments) {
        calls += seg.calls.length;
        const key = JSON.stringify([h.node.role, seg.gen, seg.calls]);
        let found = seen.get(key);
        if (!found) {
          found = [];
          let cfg: TalosDoc[] = base(h.node.role);
          for (const g of seg.gen) {
            const r = applyTalosPatch(cfg, g.yaml, version);
            if (!r.ok) found.push(`${g.name}: Talos refuses it at config generation: ${r.error}`);
            else cfg = r.result;
          }
          found.push(...checkCallSequence(cfg, seg.calls, version).problems);
          seen.set(key, found);
        }
        for (const p of found) {
          const k = `${h.node.name}: ${p}`;
          const e = problems.get(k);
          if (e) e.n++;
          else problems.set(k, { first: order.map((r) => r.id).join(' → '), n: 1 });
        }
      }
    }
  }
  return {
    problems: [...problems].map(([k, e]) => `${lab.name} (Talos ${version}, ${profile.name}) ${k} — in ${e.n} order(s), first ${e.first}`),
    orders: orders.length,
    calls,
  };
}
