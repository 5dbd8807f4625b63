/**
 * Service mechanism `kube-vip-bgp`: kube-vip as a DaemonSet on the workload nodes in BGP mode: no
 * election; every node announces each Service /32 it serves — for externalTrafficPolicy Local only
 * the nodes with a local endpoint, for Cluster every node (kube-vip pkg/manager/watch_services.go:
 * BGP without leader election starts an endpoint watcher per Service) — and the router spreads
 * flows by ECMP. The speakers (`sim.speakers[node]`, owner 'kube-vip') are rendered with
 * `timers.bgp` and optional BFD; the class rule and manifests live in ../cp/kube-vip-arp.ts.
 * Bands: see ../cp/kube-vip-bgp.ts (graceful/leave/join ≈ a withdraw, crash = BGP hold time or
 * BFD detection; min 0 because the probe's flow may hash to another node).
 */
import type { DrillKind, Target } from '../../model/types.js';
import type { Band, Mechanism, MechanismContext } from '../types.js';
import { KUBE_VIP_SOURCES, renderKubeVipSvc, serviceNodes } from '../cp/kube-vip-arp.js';
import { bgpEcmpBand } from '../cp/kube-vip-bgp.js';

export const kubeVipBgpSvc: Mechanism = {
  id: 'kube-vip-bgp',
  kind: 'svc',
  title: 'kube-vip Services (BGP)',
  summary:
    'kube-vip runs as a DaemonSet on the workload nodes in BGP mode: every node announces each Service IP as a /32 (for externalTrafficPolicy Local only ' +
    'the nodes with a local pod) and the router spreads flows over them by ECMP. A graceful stop withdraws the routes at once; a crash is noticed when the ' +
    'router\'s BGP hold timer expires (or BFD). Node joins/leaves re-hash ECMP flows (resets without resilient hashing). kube-vip needs TCP/179 on the node, ' +
    'so it cannot share nodes with MetalLB or Cilium BGP (pitfall 3). Sim: the node\'s FRR speaker announces what the emulated kube-vip adds.',
  sources: [...KUBE_VIP_SOURCES, 'kube-vip.io/docs/modes/bgp (v0.8/v0.9)', 'RFC 4271 §4.2/§10; FRR 8.4 docs bgp.rst, bfd.rst'],
  uses: { l2: false, bgp: true },

  render: (ctx) => renderKubeVipSvc(ctx, 'bgp'),

  expectedOutage(drill: DrillKind, target: Target, ctx: MechanismContext): Band | null {
    if (target !== 'service' || drill === 'baseline') return null;
    if (serviceNodes(ctx.topology).length < 2) return null;
    return bgpEcmpBand(drill, ctx.topology, ctx.strategy, 'the Service /32');
  },

  drillIssue(drill: DrillKind, target: Target): string | null {
    if (target !== 'service') return null;
    switch (drill) {
      case 'garp-ignored':
        return 'kube-vip BGP mode routes Service IPs over BGP: no gratuitous ARP is involved';
      case 'vip-loss-internal':
        return 'KubePrism carries API traffic only';
      default:
        return null;
    }
  },
};

export default kubeVipBgpSvc;
