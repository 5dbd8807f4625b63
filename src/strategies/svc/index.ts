/**
 * The service LB mechanisms (src/strategies/index.ts loads this record by id). kube-vip's service
 * side lives in ./kube-vip-arp.ts and ./kube-vip-bgp.ts.
 */
import type { Mechanism } from '../types.js';
import { metallbL2 } from './metallb-l2.js';
import { metallbBgp } from './metallb-bgp.js';
import { ciliumBgp } from './cilium-bgp.js';
import { kubeVipArpSvc } from './kube-vip-arp.js';
import { kubeVipBgpSvc } from './kube-vip-bgp.js';

export const svcMechanisms: Record<string, Mechanism> = {
  'metallb-l2': metallbL2,
  'metallb-bgp': metallbBgp,
  'kube-vip-arp': kubeVipArpSvc,
  'kube-vip-bgp': kubeVipBgpSvc,
  'cilium-bgp': ciliumBgp,
};
