/**
 * kube-vip in BGP mode (mechanism `kube-vip-bgp`), for the API VIP and for Services. No leader
 * election: every control plane adds the VIP to `lo` and announces it as a /32 (API); every
 * workload node announces each Service /32 it serves — for externalTrafficPolicy Local only the
 * nodes with a local endpoint, for Cluster every node (kube-vip pkg/manager/watch_services.go: BGP
 * without leader election starts an endpoint watcher per Service). The router spreads flows over
 * them by ECMP. Speakers (`sim.speakers[node]`, owner kube-vip) use kube-vip's own BGP timers
 * (`timers.kubeVipBgp`: hold 30 s, keepalive 10 s, connect retry 10 s) and BFD when the release
 * has it (v1.2.2+; an older release asked for BFD is refused when the lab loads).
 * Rules, manifests and sources are in ../kube-vip/render.ts.
 *
 * Bands (../bands.ts bgpEcmpBand): a graceful stop withdraws at once; a crash lasts until the
 * router's hold timer (or BFD) drops the dead node's path; leave/join only re-hash.
 */
import type { DrillKind, Topology, StrategyRef } from '../../model/types.js';
import type { Band, MechanismContext, Mechanism } from '../types.js';
import { controlPlanes } from '../../emulation/net.js';
import { bfdFor, bgpDeadPeerBand, bgpDrillIssue, bgpEcmpBand, bgpRouterNote, onTarget } from '../bands.js';
import { KUBE_VIP_BFD_UNIT, KUBE_VIP_BGP_SPEAKER, KUBE_VIP_IPVS } from '../kube-vip/fidelity.js';
import { KUBE_VIP_FAMILY, KUBE_VIP_SOURCES, renderKubeVipCp, renderKubeVipSvc, serviceNodes } from '../kube-vip/render.js';
import { CP_OPTIONS, KUBE_VIP_COMPONENTS, SVC_OPTIONS, cpClaimsClassless, kubeVipStrategyIssue, svcClaimsClassless } from '../kube-vip/roles.js';
import { kubeVipBgpTimers, kubeVipTimers } from '../kube-vip/timers.js';
import { kubeVipSettings } from '../kube-vip/settings.js';

const ID = 'kube-vip-bgp';

/** how long the router keeps a dead node's path: BFD detection, else the hold timer (both sides use timers.kubeVipBgp) */
function dead(t: Topology, ref: StrategyRef): Band {
  return bgpDeadPeerBand(t.timers.kubeVipBgp, t.timers.kubeVipBgp, bfdFor(t, ref), 'the node');
}

const BGP_SOURCES = [
  'kube-vip.io/docs/modes/bgp: BGP mode, VIP on lo, every node advertises; bgp_hold_time / bgp_keepalive_interval',
  'kube-vip cmd/kube-vip.go @v0.8.9/@v1.2.3 (bgpHoldTimer 30 s, bgpKeepAliveInterval 10 s), pkg/bgp/peers.go (ConnectRetry 10 s; BfdPeerConfig from v1.2.2), pkg/kubevip/config_bgp.go @v1.2.3 (bgp_peers BFD field)',
  'RFC 4271 §4.2/§10 (hold timer reset by KEEPALIVE/UPDATE); FRR 8.4 docs bgp.rst, bfd.rst',
];

export const kubeVipBgp: Mechanism = {
  id: ID,
  family: KUBE_VIP_FAMILY,
  timers: [kubeVipTimers, kubeVipBgpTimers],
  settings: kubeVipSettings,
  components: KUBE_VIP_COMPONENTS,
  cp: {
    id: ID,
    kind: 'cp',
    family: KUBE_VIP_FAMILY,
    title: 'kube-vip BGP',
    summary:
      'kube-vip runs as a static pod on every control plane in BGP mode: there is no election, every control plane adds the VIP to lo and announces it as a /32 ' +
      'to the router, which spreads connections over them by ECMP (active-active). A graceful stop withdraws the route at once; a crash is noticed only when ' +
      "the router's BGP hold time expires (kube-vip's own default 30 s, keepalive 10 s) or BFD detects it (kube-vip v1.2.2+), and until then the flows hashed to the dead node fail. kube-vip and MetalLB/Cilium cannot " +
      "both speak BGP on a node (TCP/179, pitfall 3). Sim: the node's FRR speaker announces what the emulated kube-vip adds.",
    sources: [...KUBE_VIP_SOURCES, ...BGP_SOURCES],
    traits: { l2: false, bgp: true, spread: 'active-active', endpoint: 'vip' },
    holders: 'routes',
    options: CP_OPTIONS,
    claimsClasslessServices: cpClaimsClassless,
    articleClaims: ['api-active-active'],
    fidelity: [...onTarget('cp', [KUBE_VIP_BGP_SPEAKER, KUBE_VIP_BFD_UNIT, KUBE_VIP_IPVS]), bgpRouterNote('cp')],
    bgpTimers: (t) => t.timers.kubeVipBgp,
    strategyIssue: kubeVipStrategyIssue,
    render: (ctx) => renderKubeVipCp(ctx, 'bgp'),
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline' || drill === 'node-leave' || drill === 'node-join') return null; // churn is measured on Services
      return bgpEcmpBand(drill, controlPlanes(ctx.topology).length, dead(ctx.topology, ctx.strategy), `the VIP ${ctx.topology.vip}/32`);
    },
    drillIssue: bgpDrillIssue(ID, 'cp'),
  },
  svc: {
    id: ID,
    kind: 'svc',
    family: KUBE_VIP_FAMILY,
    title: 'kube-vip BGP',
    summary:
      'kube-vip runs as a DaemonSet on the workload nodes in BGP mode: every node announces each Service IP as a /32 (for externalTrafficPolicy Local only ' +
      'the nodes with a local pod) and the router spreads flows over them by ECMP. A graceful stop withdraws the routes at once; a crash is noticed when the ' +
      "router's BGP hold timer expires (or BFD). Node joins/leaves re-hash ECMP flows (resets without resilient hashing). kube-vip needs TCP/179 on the node, " +
      "so it cannot share nodes with MetalLB or Cilium BGP (pitfall 3). Sim: the node's FRR speaker announces what the emulated kube-vip adds.",
    sources: [...KUBE_VIP_SOURCES, ...BGP_SOURCES],
    traits: { l2: false, bgp: true, spread: 'active-active' },
    holders: 'routes',
    options: SVC_OPTIONS,
    claimsClasslessServices: svcClaimsClassless,
    articleClaims: ['bgp-ecmp-spread', 'bgp-churn-resets'],
    fidelity: [...onTarget('svc', [KUBE_VIP_BGP_SPEAKER, KUBE_VIP_BFD_UNIT]), bgpRouterNote('svc')],
    bgpTimers: (t) => t.timers.kubeVipBgp,
    strategyIssue: kubeVipStrategyIssue,
    render: (ctx) => renderKubeVipSvc(ctx, 'bgp'),
    expectedOutage(drill: DrillKind, ctx: MechanismContext): Band | null {
      if (drill === 'baseline') return null;
      return bgpEcmpBand(drill, serviceNodes(ctx.topology).length, dead(ctx.topology, ctx.strategy), 'the Service /32');
    },
    drillIssue: bgpDrillIssue(ID, 'svc'),
  },
};
