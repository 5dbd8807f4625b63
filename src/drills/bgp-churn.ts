/**
 * ECMP churn (the source article: "when a node joins or leaves, stateless ECMP hashing re-maps flows and
 * active TCP connections land on a node that does not know them → reset"). The victim is one of
 * the nodes currently announcing the service (observed at the router).
 */
import type { Drill } from './types.js';
import type { Strategy } from '../strategies/types.js';
import type { Target } from '../model/types.js';
import { pickVictim } from './victims.js';

function needsBgpService(strategy: Strategy, target: Target): string | null {
  if (target !== 'service') return 'node leave/join churn is measured on the service address';
  return strategy.svc.traits.bgp ? null : `${strategy.svc.id} does not announce over BGP: no ECMP to churn`;
}

export const nodeLeave: Drill = {
  kind: 'node-leave',
  description: 'a node leaves the BGP fabric gracefully (its speaker withdraws): ECMP re-hashes',
  held: false,
  primitives: ['leave', 'join'],
  applicable: needsBgpService,
  pickVictim: (ctx) => pickVictim(ctx, ctx.spec.victim === 'holder' ? 'holder' : ctx.spec.victim),
  inject: async (ctx, victim) => {
    if (victim) await ctx.lab.inject('leave', victim);
  },
  restore: async (ctx, victim) => {
    if (victim) await ctx.lab.restore(victim);
  },
};

export const nodeJoin: Drill = {
  kind: 'node-join',
  description: 'a node joins the BGP fabric (it had left before traffic started): ECMP re-hashes',
  held: false,
  primitives: ['leave', 'join'],
  applicable: needsBgpService,
  pickVictim: (ctx) => pickVictim(ctx, ctx.spec.victim === 'holder' ? 'holder' : ctx.spec.victim),
  // the node leaves before the traffic starts, so the measured event is its (re)join
  prepare: async (ctx, victim) => {
    if (victim) await ctx.lab.inject('leave', victim);
  },
  inject: async (ctx, victim) => {
    if (victim) await ctx.lab.inject('join', victim);
  },
  restore: async () => {},
};
