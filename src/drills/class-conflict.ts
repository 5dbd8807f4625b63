/**
 * Pitfall 2: kube-vip and MetalLB both claiming one class-less Service make its IP flap between
 * their announcers. No fault is injected: the misconfiguration IS the fault; the run observes
 * the service over the window and counts the flaps (GARPs from alternating MACs, errors).
 */
import type { Drill } from './types.js';

export const classConflict: Drill = {
  kind: 'class-conflict',
  description: 'two controllers claim the same Service (no spec.loadBalancerClass): the IP flaps',
  held: false,
  applicable: (strategy, target) => {
    if (target !== 'service') return 'the conflict is about Service IPs';
    const two = strategy.ref.cp.startsWith('kube-vip') && strategy.ref.svc.startsWith('metallb');
    if (!two) return 'needs kube-vip (API) and MetalLB (services) in one cluster';
    return strategy.ref.options.useLoadBalancerClass === false ? null : 'the strategy uses spec.loadBalancerClass, so there is no conflict to show (set useLoadBalancerClass: false)';
  },
  pickVictim: async () => null,
  inject: async () => {},
  restore: async () => {},
};
