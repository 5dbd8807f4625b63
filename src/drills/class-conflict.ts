/**
 * Pitfall 2: two controllers (e.g. kube-vip for the API and MetalLB for Services) both claiming
 * one class-less Service make its IP flap between their announcers. No fault is injected: the misconfiguration IS the fault; the run observes
 * the service over the window and counts the flaps (GARPs from alternating MACs, errors).
 */
import type { Drill } from './types.js';
import { claimsConflict } from '../strategies/compose.js';

export const classConflict: Drill = {
  kind: 'class-conflict',
  description: 'two controllers claim the same Service (no spec.loadBalancerClass): the IP flaps',
  held: false,
  primitives: [],
  applicable: (strategy, target) => {
    if (target !== 'service') return 'the conflict is about Service IPs';
    if (claimsConflict(strategy)) return null;
    return `${strategy.cp.id} and ${strategy.svc.id} do not both claim class-less Services (they use spec.loadBalancerClass, or only one is a Service controller): no conflict to show`;
  },
  pickVictim: async () => null,
  inject: async () => {},
  restore: async () => {},
};
