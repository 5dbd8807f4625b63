/**
 * What both kube-vip mechanisms share as roles: the options kube-vip reads, which Services it
 * claims, its sources and the components it provides. The ARP and BGP modes differ in how the
 * address reaches the network (./render.ts) and so in their bands.
 */

import type { StrategyRef, Topology } from '../../model/types.js';
import type { OptionDef, Role } from '../types.js';
import { KUBE_VIP_FAMILY } from './render.js';
import { bfdFor } from '../bands.js';
import { releaseOf } from './settings.js';

/** The one agent component both modes run (one process per node for both roles). */
export const KUBE_VIP_COMPONENTS = { 'kube-vip': new URL('./agent.js', import.meta.url).href };

const otherIsKubeVip = (other: Role) => other.family === KUBE_VIP_FAMILY;

/** Options of kube-vip as the API mechanism. */
export const CP_OPTIONS: Record<string, OptionDef> = {
  kubeVipLbEnable: { describe: 'kube-vip `lb_enable`: spread API connections over every control plane (IPVS upstream)' },
  useLoadBalancerClass: {
    describe: 'kube-vip for the API beside another Service controller: true = lb_class_only (no conflict), false = it also claims class-less Services (pitfall 2)',
    meaningful: (other) => (otherIsKubeVip(other) ? 'only meaningful when kube-vip (API) runs beside another Service controller (pitfall 2)' : null),
  },
};

/** Options of kube-vip as the Service mechanism. */
export const SVC_OPTIONS: Record<string, OptionDef> = {
  kubeVipServicesElection: { describe: 'kube-vip `svc_election`: one leader election per Service instead of one for all' },
};

/** kube-vip for the API takes class-less Services only when told to beside another controller (useLoadBalancerClass: false). */
export const cpClaimsClassless = (ref: { options: Record<string, unknown> }) => ref.options.useLoadBalancerClass === false;
/** kube-vip as the Service mechanism takes class-less Services (lbClassFilterLegacy without lb_class_only). */
export const svcClaimsClassless = () => true;


/** What the pinned release cannot do as the lab configures it: BFD before v1.2.2 (./versions.ts bfd). */
export function kubeVipStrategyIssue(ref: StrategyRef, t: Topology): { option?: string; message: string } | null {
  const rel = releaseOf(t);
  if (bfdFor(t, ref) && !rel.bfd) {
    const from = ref.options.bfd !== undefined ? 'options.bfd' : 'timers.bfd.enabled';
    return {
      option: 'bfd',
      message: `BFD (${from}) on kube-vip's BGP sessions needs kube-vip v1.2.2 or later (pkg/kubevip/config_bgp.go, BFD peer options); settings.kubeVip.version is ${rel.version}: pin v1.2.2 or later, or turn BFD off for ${ref.id}`,
    };
  }
  return null;
}
export { kubeVipReal as KUBE_VIP_REAL } from './manifests.js';
