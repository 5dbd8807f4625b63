/** Victim rules: the current holder/announcer (observed, not predicted), a random control plane, a worker. */
import type { VictimRule } from '../model/types.js';
import type { DrillContext } from './types.js';
import { LabError } from '../util/errors.js';
import { claimsConflict } from '../strategies/compose.js';
import { sleep } from '../util/proc.js';

/** how long a victim pick waits for one holder of a single-holder address (see settledHolders) */
export const HOLDER_SETTLE_MS = 30_000;
const HOLDER_POLL_MS = 250;

/**
 * The holders of the drill's address once there is one. A mechanism with one holder can show two
 * for a while after the previous drill: a kube-vip leader thawed after its lease was taken keeps
 * the address (and its gratuitous ARPs) until its renewal round's RenewDeadline ends it (client-go
 * leaderelection renew: a fresh RenewDeadline per round, 10 s by default). Picking then would freeze
 * or crash the node that no longer leads and measure a backend loss as if it were the failover.
 * Not for routes (ECMP: several by design), not for the class-less Service two controllers claim
 * (two holders is the behaviour under test); after HOLDER_SETTLE_MS the pick goes on with what it sees.
 */
async function settledHolders(ctx: DrillContext): Promise<string[]> {
  const role = ctx.target === 'api' ? ctx.strategy.cp : ctx.strategy.svc;
  const single = role?.holders === 'address' && !(ctx.target === 'service' && claimsConflict(ctx.strategy));
  const until = Date.now() + HOLDER_SETTLE_MS;
  for (;;) {
    const holders = await ctx.lab.holders(ctx.target);
    if (!single || holders.length <= 1 || Date.now() >= until) return holders;
    await sleep(HOLDER_POLL_MS);
  }
}

export async function pickVictim(ctx: DrillContext, rule: VictimRule = ctx.spec.victim): Promise<string | null> {
  const topo = ctx.lab.lab.topology;
  const pick = <T>(xs: T[]): T => xs[Math.floor(ctx.random() * xs.length) % xs.length]!;
  if (rule === 'none') return null;
  if (typeof rule === 'object') return rule.node;
  const cps = topo.nodes.filter((n) => n.role === 'controlplane').map((n) => n.name);
  const workers = topo.nodes.filter((n) => n.role === 'worker').map((n) => n.name);
  switch (rule) {
    case 'holder': {
      const holders = await settledHolders(ctx);
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
