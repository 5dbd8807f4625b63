/**
 * Pitfall 5: losing the external VIP only affects external access; in-cluster clients go through
 * KubePrism (localhost:7445 → every API server) and carry on. The drill partitions the VIP holder
 * (its API server is unreachable through the VIP until another node takes over) while the
 * kubelet-like client on every worker keeps calling the API through KubePrism; the run records
 * both the external outage and the internal one (`internalOutageMs`).
 */
import type { Drill } from './types.js';
import { pickVictim } from './victims.js';

export const vipLossInternal: Drill = {
  kind: 'vip-loss-internal',
  description: 'the VIP holder is partitioned: external clients lose the VIP, in-cluster clients keep working through KubePrism',
  held: true,
  primitives: ['partition'],
  applicable: (_s, target) => (target === 'api' ? null : 'KubePrism carries API traffic only'),
  pickVictim: (ctx) => pickVictim(ctx, 'holder'),
  inject: async (ctx, victim) => {
    if (victim) await ctx.lab.inject('partition', victim);
  },
  restore: async (ctx, victim) => {
    if (victim) await ctx.lab.restore(victim);
  },
};
