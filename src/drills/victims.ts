/** Victim rules: the current holder/announcer (observed, not predicted), a random control plane, a worker. */
import type { VictimRule } from '../model/types.js';
import type { DrillContext } from './types.js';
import { LabError } from '../util/errors.js';

export async function pickVictim(ctx: DrillContext, rule: VictimRule = ctx.spec.victim): Promise<string | null> {
  const topo = ctx.lab.lab.topology;
  const pick = <T>(xs: T[]): T => xs[Math.floor(ctx.random() * xs.length) % xs.length]!;
  if (rule === 'none') return null;
  if (typeof rule === 'object') return rule.node;
  const cps = topo.nodes.filter((n) => n.role === 'controlplane').map((n) => n.name);
  const workers = topo.nodes.filter((n) => n.role === 'worker').map((n) => n.name);
  switch (rule) {
    case 'holder': {
      const holders = await ctx.lab.holders(ctx.target);
      if (holders.length > 0) return pick([...holders].sort());
      // No address holder (external HAProxy: the endpoint is the LB box): act on a control plane
      // for the API, or a workload node for services — the failure the LB must hide.
      return ctx.target === 'api' ? pick(cps) : pick(workers.length ? workers : cps);
    }
    case 'random-controlplane':
      return pick(cps);
    case 'worker':
      if (!workers.length) throw new LabError('drill victim "worker": this topology has no workers');
      return pick(workers);
    case 'random-node':
      return pick(topo.nodes.map((n) => n.name));
  }
  return null;
}
