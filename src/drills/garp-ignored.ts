/**
 * Sticky ARP caches (the source article: "clients or routers with sticky ARP caches that ignore [gratuitous
 * ARP] can lose connectivity for 30–60 s"). The router (and LAN clients) are set to ignore
 * gratuitous ARP, then the address holder crashes: the new holder's GARP is ignored, and the
 * path heals only when the kernel's own neighbour timers expire (REACHABLE → STALE → DELAY →
 * PROBE → FAILED → new resolution), which is the real Linux behaviour, not a timer of ours.
 */
import type { Drill } from './types.js';
import { pickVictim } from './victims.js';

export const garpIgnored: Drill = {
  kind: 'garp-ignored',
  description: 'the router ignores gratuitous ARP, then the address holder crashes',
  held: false,
  primitives: ['crash'],
  applicable: (strategy, target) => {
    const m = target === 'api' ? strategy.cp : strategy.svc;
    return m.traits.l2 ? null : `${m.id} does not move an address over L2 (no GARP involved)`;
  },
  prepare: async (ctx) => {
    await ctx.lab.setGarpIgnored(true);
  },
  pickVictim: (ctx) => pickVictim(ctx, 'holder'),
  inject: async (ctx, victim) => {
    if (victim) await ctx.lab.inject('crash', victim);
  },
  restore: async (ctx, victim) => {
    await ctx.lab.setGarpIgnored(false);
    if (victim) await ctx.lab.restore(victim);
  },
};
