/**
 * Service mechanism `kube-vip-arp`: kube-vip as a DaemonSet on the nodes that run workloads,
 * taking class-less Services and those of class `kube-vip.io/kube-vip-class` (rule and sources in
 * ../cp/kube-vip-arp.ts). ARP mode: by default ONE leader (Lease `kube-system/plndr-svcs-lock`)
 * adds every Service IP to its NIC and sends gratuitous ARP (all Service traffic enters through
 * that node); with `options.kubeVipServicesElection` (svc_election) each Service has its own Lease
 * `kubevip-<service>` in the Service's namespace, and for externalTrafficPolicy Local only nodes
 * with a local endpoint take part. Same client-go election timers as the API VIP
 * (`timers.kubeVip`), so the same bands: graceful ≤ (1+1.2)·retryPeriod + margin, crash
 * [leaseDuration − retryPeriod, leaseDuration + 2·(1+1.2)·retryPeriod + margin].
 * The component is the same `kube-vip` process as the API side (../kube-vip.agent.ts): on a node
 * that runs both, the configs merge (`api` + `services`).
 */
import type { DrillKind, Target } from '../../model/types.js';
import type { Band, Mechanism, MechanismContext } from '../types.js';
import { KUBE_VIP_SOURCES, l2LeaseBand, renderKubeVipSvc, serviceNodes } from '../cp/kube-vip-arp.js';
import { LEASE_NAMESPACE, SVC_LEASE, serviceLeaseName } from '../kube-vip.agent.js';

export const kubeVipArpSvc: Mechanism = {
  id: 'kube-vip-arp',
  kind: 'svc',
  title: 'kube-vip Services (ARP)',
  summary:
    'kube-vip runs as a DaemonSet on the workload nodes and announces LoadBalancer Service IPs by ARP. By default one leader, elected on a Kubernetes Lease ' +
    '(5 s lease, 1 s retry), holds every Service IP, so all Service traffic enters through one node; per-Service election (svc_election) spreads the IPs over ' +
    'nodes and keeps externalTrafficPolicy Local Services on nodes with a local pod. Failover: about two seconds after a graceful stop (the Lease is released), ' +
    'the lease duration after a crash. No address pools or announcement policies as in MetalLB: each Service needs its IP set (annotation or kube-vip-cloud-provider). ' +
    'Sim: emulated kube-vip with client-go election semantics on an etcd-backed Lease.',
  sources: KUBE_VIP_SOURCES,
  uses: { l2: true, bgp: false },

  render: (ctx) => renderKubeVipSvc(ctx, 'arp'),

  expectedOutage(drill: DrillKind, target: Target, ctx: MechanismContext): Band | null {
    if (target !== 'service' || drill === 'baseline') return null;
    if (serviceNodes(ctx.topology).length < 2) return null; // no peer to take the address over
    const svc = ctx.topology.services[0];
    const lease = ctx.strategy.options.kubeVipServicesElection && svc ? `${svc.namespace}/${serviceLeaseName(svc.name)}` : `${LEASE_NAMESPACE}/${SVC_LEASE}`;
    return l2LeaseBand(drill, ctx.topology, lease);
  },

  drillIssue(drill: DrillKind, target: Target): string | null {
    if (target !== 'service') return null;
    switch (drill) {
      case 'node-leave':
      case 'node-join':
        return 'kube-vip ARP mode moves Service IPs over L2, they are not announced over BGP: no ECMP to churn';
      case 'vip-loss-internal':
        return 'KubePrism carries API traffic only';
      default:
        return null;
    }
  },
};

export default kubeVipArpSvc;
