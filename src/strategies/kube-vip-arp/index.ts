/**
 * kube-vip in ARP mode (mechanism `kube-vip-arp`), for the API VIP and for Services.
 *  - API: a static pod on every control plane; the leader of the Lease `kube-system/plndr-cp-lock`
 *    (renewed through the node's own API server) adds the VIP to its NIC; gratuitous ARP goes out
 *    as the pinned release does it (settings.kubeVip.version, ../kube-vip/versions.ts): at once
 *    (≤ v0.8) or with the process-wide ARP loop every vip_arpRate (≥ v0.9). With `lb_enable` the
 *    holder spreads API connections round robin over the control planes (active-active).
 *  - Services: a DaemonSet on the workload nodes; by default ONE leader (Lease
 *    `kube-system/plndr-svcs-lock`) holds every Service IP; with `options.kubeVipServicesElection`
 *    each Service has its own Lease `kubevip-<service>` and externalTrafficPolicy Local Services
 *    elect only among nodes with a local endpoint.
 * Both roles run the same emulated kube-vip process (../kube-vip/agent.ts); rules, manifests,
 * bands and their sources are in ../kube-vip/render.ts.
 */
import type { DrillKind } from '../../model/types.js';
import type { Band, MechanismContext, Mechanism } from '../types.js';
import { controlPlanes } from '../../emulation/net.js';
import { l2DrillIssue, noPeerReason, onTarget } from '../bands.js';
import { KUBE_VIP_FAMILY, KUBE_VIP_SOURCES, kubeVipCpRejoin, l2LeaseBand, renderKubeVipCp, renderKubeVipSvc, serviceNodes } from '../kube-vip/render.js';
import { CP_LEASE, LEASE_NAMESPACE, SVC_LEASE, serviceLeaseName } from '../kube-vip/agent.js';
import { CP_OPTIONS, KUBE_VIP_COMPONENTS, SVC_OPTIONS, cpClaimsClassless, svcClaimsClassless } from '../kube-vip/roles.js';
import { kubeVipTimers } from '../kube-vip/timers.js';
import { kubeVipSettings } from '../kube-vip/settings.js';
import { KUBE_VIP_GARP_FORM, KUBE_VIP_IPVS, KUBE_VIP_LEASE_TRANSPORT, KUBE_VIP_SERVICES_HANG } from '../kube-vip/fidelity.js';

const ID = 'kube-vip-arp';

export const kubeVipArp: Mechanism = {
  id: ID,
  family: KUBE_VIP_FAMILY,
  timers: [kubeVipTimers],
  settings: kubeVipSettings,
  components: KUBE_VIP_COMPONENTS,
  cp: {
    id: ID,
    kind: 'cp',
    family: KUBE_VIP_FAMILY,
    title: 'kube-vip ARP',
    summary:
      'kube-vip runs as a static pod on every control plane and elects a leader on a Kubernetes Lease through its own API server (client-go leader election: ' +
      'lease 15 s, renew deadline 10 s, retry 2 s since v1.1.0; 5/3/1 s before). The leader adds the VIP to its NIC; since v0.9 its first gratuitous ARP waits ' +
      'for the process-wide ARP loop (every 3 s), before that it went out at once. A graceful stop releases the Lease so a follower takes over at its next retry; ' +
      'a crash costs the lease duration (≈ 13–25 s with the v1.1+ defaults), and so does a dead local API server (the leader cannot renew). With lb_enable the holder spreads new API connections round ' +
      'robin over every control plane that answers its /version check (active-active; upstream uses IPVS — the lab kernel has none, so the sim does the same ' +
      "with nftables numgen DNAT + masquerade in the holder's namespace). The same process can also serve Services, so losing it can cut both. " +
      'Sim: emulated kube-vip with client-go election semantics on an etcd-backed Lease.',
    sources: KUBE_VIP_SOURCES,
    traits: { l2: true, bgp: false, spread: 'active-active', endpoint: 'vip' },
    holders: 'address',
    options: CP_OPTIONS,
    claimsClasslessServices: cpClaimsClassless,
    articleClaims: ['api-active-active'],
    fidelity: onTarget('cp', [KUBE_VIP_LEASE_TRANSPORT, KUBE_VIP_GARP_FORM, KUBE_VIP_IPVS]),
    render: (ctx) => renderKubeVipCp(ctx, 'arp'),
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      if (noPeerReason(controlPlanes(ctx.topology).length, ID)) return null;
      return l2LeaseBand(drill, ctx.topology, `${LEASE_NAMESPACE}/${CP_LEASE}`);
    },
    rejoin: (ctx) => kubeVipCpRejoin(ctx.topology),
    drillIssue: l2DrillIssue(ID, 'cp'),
  },
  svc: {
    id: ID,
    kind: 'svc',
    family: KUBE_VIP_FAMILY,
    title: 'kube-vip ARP',
    summary:
      'kube-vip runs as a DaemonSet on the workload nodes and announces LoadBalancer Service IPs by ARP. By default one leader, elected on a Kubernetes Lease ' +
      '(15 s lease, 2 s retry since v1.1.0), holds every Service IP, so all Service traffic enters through one node; per-Service election (svc_election) spreads the IPs over ' +
      'nodes and keeps externalTrafficPolicy Local Services on nodes with a local pod. Failover: a few seconds after a graceful stop (the Lease is released), ' +
      'the lease duration after a crash; v1.2.0–v1.2.3 stay dead after losing the global Services lease (no restart). No address pools or announcement policies as in MetalLB: each Service needs its IP set (annotation or kube-vip-cloud-provider). ' +
      'Sim: emulated kube-vip with client-go election semantics on an etcd-backed Lease.',
    sources: KUBE_VIP_SOURCES,
    traits: { l2: true, bgp: false, spread: 'active-passive' },
    holders: 'address',
    options: SVC_OPTIONS,
    claimsClasslessServices: svcClaimsClassless,
    articleClaims: ['l2-single-entry'],
    fidelity: onTarget('svc', [KUBE_VIP_LEASE_TRANSPORT, KUBE_VIP_GARP_FORM, KUBE_VIP_SERVICES_HANG]),
    render: (ctx) => renderKubeVipSvc(ctx, 'arp'),
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      if (noPeerReason(serviceNodes(ctx.topology).length, ID)) return null;
      const svc = ctx.topology.services[0];
      const lease = ctx.strategy.options.kubeVipServicesElection && svc ? `${svc.namespace}/${serviceLeaseName(svc.name)}` : `${LEASE_NAMESPACE}/${SVC_LEASE}`;
      return l2LeaseBand(drill, ctx.topology, lease);
    },
    drillIssue: l2DrillIssue(ID, 'svc'),
  },
};
